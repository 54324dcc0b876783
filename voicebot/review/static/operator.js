// Operator screen: the board follows the call store live. /operator/events (server-sent events) sends the board's
// HTML, rendered and redacted on the server, whenever a call changes; a call newly handed to a person pops up
// (highlighted, named in the banner and the tab title) until the operator presses "Got it". No inline scripts:
// the CSP forbids them. window.operatorFeed counts what arrived (for people debugging, and for the tests).
document.addEventListener("DOMContentLoaded", () => {
  const wrap = document.getElementById("board-wrap");
  if (!wrap || !window.EventSource) return;
  const status = document.getElementById("live-status");
  const banner = document.getElementById("transfer-alert");
  const title = document.title;
  const seen = new Set(JSON.parse(wrap.dataset.transfers || "[]")); // handed over before the page opened
  const popped = new Set();
  const feed = {updates: 0, popped: [], opened: 0};
  window.operatorFeed = feed;

  const setStatus = (state, text) => { status.dataset.state = state; status.textContent = text; };
  const highlight = () => popped.forEach((id) => {
    const card = document.getElementById("call-" + id);
    if (card) card.classList.add("popup");
  });
  const acknowledge = () => {
    popped.clear();
    banner.hidden = true;
    document.title = title;
    document.querySelectorAll(".opcall.popup").forEach((card) => card.classList.remove("popup"));
  };
  document.getElementById("transfer-ack").addEventListener("click", acknowledge);

  const source = new EventSource(wrap.dataset.feed);
  source.addEventListener("open", () => { feed.opened += 1; setStatus("live", "live"); });
  source.addEventListener("error", () => setStatus("reconnecting", "reconnecting…"));
  source.addEventListener("board", (message) => {
    const data = JSON.parse(message.data);
    wrap.innerHTML = data.html;
    feed.updates += 1;
    const fresh = data.transfers.filter((id) => !seen.has(id));
    fresh.forEach((id) => { seen.add(id); popped.add(id); feed.popped.push({id: id, at: Date.now()}); });
    highlight();
    if (fresh.length) {
      const card = document.getElementById("call-" + fresh[0]);
      const who = card ? card.querySelector(".opname").textContent + " " + card.querySelector(".opcaller").textContent : "";
      banner.querySelector(".alert-text").textContent = "Transfer to a person: " + who;
      banner.hidden = false;
      document.title = "● Transfer · " + title;
      if (card) card.scrollIntoView({block: "nearest"});
    }
  });
});
