// Call page: clicking a turn's time plays the recording from there; the playing turn is highlighted.
// Call list: a click anywhere on a row opens the call. No inline scripts: the CSP forbids them.
document.addEventListener("DOMContentLoaded", () => {
  const audio = document.getElementById("recording");
  if (audio) {
    document.querySelectorAll("[data-seek]").forEach((button) => {
      button.addEventListener("click", () => {
        audio.currentTime = parseFloat(button.dataset.seek);
        audio.play();
      });
    });
    const turns = Array.from(document.querySelectorAll(".turn[data-start]"));
    audio.addEventListener("timeupdate", () => {
      let current = null;
      for (const turn of turns) {
        if (parseFloat(turn.dataset.start) <= audio.currentTime + 0.05) current = turn;
      }
      turns.forEach((turn) => turn.classList.toggle("playing", turn === current && !audio.paused));
    });
    // "play_recording" goes to the access log when someone plays a track (once per track until it ends),
    // never when the page or the audio's metadata loads
    const logged = new Set();
    audio.addEventListener("play", () => {
      const which = audio.dataset.which;
      const token = document.querySelector('input[name="csrf_token"]');
      if (!audio.dataset.played || logged.has(which) || !token) return;
      logged.add(which);
      fetch(audio.dataset.played, {method: "POST", credentials: "same-origin",
        body: new URLSearchParams({csrf_token: token.value, which: which})});
    });
    audio.addEventListener("ended", () => logged.delete(audio.dataset.which));
    document.querySelectorAll("[data-track]").forEach((link) => {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        const at = audio.currentTime;
        audio.dataset.which = link.dataset.track;
        audio.src = link.href;
        audio.addEventListener("loadedmetadata", () => { audio.currentTime = at; }, { once: true });
      });
    });
  }
  document.querySelectorAll("tr[data-href]").forEach((row) => {
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, button")) return;
      const link = row.querySelector("a");
      window.location.href = link ? link.href : row.dataset.href;
    });
  });
});
