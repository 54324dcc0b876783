"""The caller's words that ask for each kind of CRM write (``writes.asked_for``): a callback, a ticket, a lead, a
booking moved or cancelled, and a new order. Kept apart from the writes themselves: these are the vocabulary, in
``normalize``d words, that a turn is read against; ``dialog/writes.py`` decides with them.
"""

from __future__ import annotations

import re

SERVICE_FAULT = (r"(?:drop\w*|cut\w*) out|keeps? (?:dropping|cutting|disconnecting|crashing|freezing|buffering|"
                 r"going off|switching off|turning off)|disconnect\w*|no (?:internet|signal|connection|service|"
                 r"dial tone|power|hot water|heating|wifi|broadband)|(?:havent|hasnt|have not|has not) (?:had|got) "
                 r"(?:any )?(?:internet|signal|connection|service|power|hot water|heating|wifi|broadband)|"
                 r"(?:is|are|keeps) "
                 r"(?:really |very |so |too )?(?:slow|dead|intermittent|down(?! (?:the|to|there|here|by|at|in|on)\b))")
"""A service that fails as a line or a utility does ("My wifi keeps dropping out every evening." was a ticket by
0.0056, with no word of a fault the words knew, and went to the model)."""
SWITCH_PLAN = (r"switch(?:ing)? (?:over )?to (?:the |a |your )?(?:\w+ ){0,2}(?:plan|package|tariff|deal|bundle|"
               r"contract|subscription|membership|tier)")
ADD_ON = (r"(?:id like to|i want to|i would like to|we want to|wed like to|can i|could i|can we|could we|please) add "
          r"(?:an? |the |some )?(?:\w+ ){1,3}to (?:my|our) (?:account|plan|package|subscription|contract|broadband|"
          r"service|membership|line|bundle)")
"""Buying another plan in the words of a subscription business ("Can I switch to the 500 plan?"), or something added
to one ("I'd like to add a static IP to my account." heard the static IP entry, and its "Yes." went to the model)."""
CANT_MAKE = (r"(?:cant|cannot|can not|couldnt|wont be able to|will not be able to|(?:im|i am|were|we are) not able to|"
             r"(?:im|i am|were|we are) unable to) (?:make (?:it\b|(?:my|the|our) (?:\w+ )?(?:appointment|booking|visit|"
             r"session|class|reservation|slot|time)s?)|come|attend|get there|be there)")
"""A booked visit the caller cannot keep ("I can't make it tomorrow." was a callback by 0.008 and went to the model;
"I won't be able to come on Tuesday." a move the words did not ask for): a move, which offers other times. Not "I
can't make the payment"."""
ASKS = {
    "request_callback": re.compile(
        r"\b(call(ed|ing)? (me|us|him|her) (back|later|tomorrow|again)|call ?backs?|ring (me|us)|phone (me|us)|"
        r"get back to (me|us)|(someone|somebody|a person|colleague) (to )?call|give me a call|contact me)\b"),
    "create_ticket": re.compile(
        r"\b(broken|broke|damaged|damage|wrong|missing|faulty|defect\w*|not working|doesn'?t work|does not work|"
        r"stopped working|won'?t (work|start|print|turn on)|jamm\w*|jams?|leak\w*|complain\w*|ticket|report|"
        r"issue|problem|crack\w*|scratch\w*|never (arrived|came)|didn'?t (arrive|come)|refund|return\w*|"
        r"dent\w*|wobbl\w*|loose|squeak\w*|rattl\w*|bent|torn|ripped|stain\w*|stuck|flicker\w*|overheat\w*|"
        r"(?:fell|falls|falling|came|coming) (?:apart|off|loose)|(?:doesnt|does not|wont|will not|cant|cannot) "
        r"(?:fit|close|open|charge|connect|turn on|switch on|lock|stand)|error|rude|thr(?:ew|own|owing)|bad review|compensat\w*|unacceptable|careless\w*|mess|ruined|"
        r"botched|uneven|upset|disappointed|unhappy|" + SERVICE_FAULT + r"|(?:double|over) ?charged|charged (?:me |us )?(?:twice|double|"
        r"too much|the wrong|wrongly)|billed (?:me |us )?twice|(?:send|deliver|ship|bring|redirect) (?:it|them|"
        r"that|the order|my order|the parcel|the package) to|(?:change|update|correct) (?:the |my )?(?:delivery "
        r"|shipping )?address|wrong (?:delivery |shipping )?address)\b"),
    "create_lead": re.compile(
        r"\b(buy|buying|purchase|quote|quotation|price|prices|pricing|cost|costs|how much|interested in|upgrad\w*|"
        r"downgrad\w*|sign (me |us )?up|signing up|subscribe|become a (member|customer)|(?:to|i|we|id|wed) join"
        r"(?! (?:you|in|the call)\b)|" + SWITCH_PLAN + "|" + ADD_ON +
        r"|(place|put in|make) an? (new |big |bulk |large )?order|"
        r"looking for|estimate|order (some|more|new)|((to|i|we|id|wed|ill) order|need) (some|\d+|a few|new|"
        r"a dozen|(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
        r"sixty|seventy|eighty|ninety|a hundred|hundreds)\b)|bulk|offer)\b"),
    # moving or cancelling a booked visit (dialog/appointments.py), never an order or a delivery
    "reschedule_appointment": re.compile(
        r"\b(re ?schedul\w*|(move|moving|shift) (?!(my|the|our) (order|delivery|parcel|package))(it|my|the|our|that|"
        r"this)|chang\w* (the |my )?(date|day|time|appointment|visit|booking|reservation)|"
        r"(another|a different|an other) (day|"
        r"date)|different time|(push|put|bring) (it|my|the|that|our)( \w+){0,2} (back|off|forward)|postpon\w*|"
        r"" + CANT_MAKE + r"|(appointment|visit|booking|reservation|fitting|setup|repair)( \w+){0,3} "
        r"(be )?moved)\b"),
    "cancel_appointment": re.compile(
        r"\b(cancel\w*|call(ing)? off)\b(?! (my|the|our|this|that|an?) (order|delivery|parcel|package|"
        r"shipment|subscription|account))|\bdont need (the|my|a|that) (visit|technician|engineer|appointment|"
        r"repair|fitting|setup) (any ?more|after all)\b"),
}
NEW_ORDER = re.compile(r"\b(?:(?:to|can i|could i|may i|can we|could we|may we|id|wed|i want|we want|i would|we would|"
                       r"wanna) (?:please )?(?:(?:place|make|put in) (?:an?|a new|another) )?(?:re)?order\b"
                       r"(?! (?:number|status))|(?:place|put in) (?:a new|another) order|order (?:\w+ ){0,4}again|"
                       r"reorder|re order)\b")
"""A new order asked for, in ``normalize``d words ("I'd like to order 3 desks", "I'd like to place an order", "Can I
order the same as last time?"), not asking after one: "I'd like to place an order" and "Can I order 3 boxes of
toner?" were order statuses or histories by the word "order", and asked a known caller for the PIN to read out
orders no one asked about. "I placed an order on Monday" and "I ordered a chair" are the caller's records."""
