"""Inbound messages written for the extraction corpus test, each with what a dispatcher reading
it would say: the incident type (None when the message does not say what is wrong), the
priority, and what is still missing to schedule the job. SPAM marks messages that are not a
customer at all. Senders are unknown to the system, so "address" is missing unless the
message gives one."""

from __future__ import annotations

SPAM = "SPAM"
LATCH = "DOOR_WONT_LATCH"
CLOSER = "CLOSER_LEAKING_OR_SLAMMING"
AUTO = "AUTO_OPERATOR_FAULT"
SECURE = "CANNOT_SECURE_ENTRY"
HARDWARE = "HARDWARE_REPLACEMENT"
GLASS = "FRAME_OR_GLASS_DAMAGE"

# (channel, subject, body, incident type, priority, missing items)
CORPUS: list[tuple[str, str, str, str | None, str | None, set[str] | None]] = [
    # --- doors that won't latch ---
    (
        "SMS",
        "",
        "Hi, the back door at our shop won't latch anymore, you have to slam it to get it to close. "
        "1450 Park St, Alameda CA 94501",
        LATCH,
        "ROUTINE",
        set(),
    ),
    ("SMS", "", "my door won't latch", LATCH, "ROUTINE", {"address"}),
    (
        "SMS",
        "",
        "Front door doesnt latch properly, the strike plate looks loose. Can someone come tomorrow morning? "
        "88 Grand Ave, Oakland",
        LATCH,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "Door keeps popping open in the wind, the latch isnt catching. 2200 Shattuck Ave Berkeley CA",
        LATCH,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "hola! the patio door wont close all the way, latch is broken. 415 Fruitvale Ave, Oakland 94601",
        LATCH,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "Need someone ASAP, our office door won't latch and we don't want to leave it like this overnight",
        LATCH,
        "URGENT",
        {"address"},
    ),
    (
        "SMS",
        "",
        "our front door is sticking and hard to close, the latch doesnt line up with the strike",
        LATCH,
        "ROUTINE",
        {"address"},
    ),
    ("SMS", "", "door wont shut right, have to push it hard to get it to click", LATCH, "ROUTINE", {"address"}),
    (
        "EMAIL",
        "Door problem",
        "Hola, buenos días. Our front door won't close properly and it doesn't latch. "
        "Gracias! 2400 International Blvd, Oakland",
        LATCH,
        "ROUTINE",
        set(),
    ),
    # --- closers ---
    (
        "SMS",
        "",
        "The door closer on our main entrance is leaking oil all over the floor. 600 Embarcadero, Oakland",
        CLOSER,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "Our closer slams the door so hard the glass rattles, can you adjust it? 25 Mission St, San Francisco CA 94105",
        CLOSER,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "door slams shut really hard every time, please send someone to adjust the closer. 14 Oak Ct, San Leandro",
        CLOSER,
        "ROUTINE",
        set(),
    ),
    ("SMS", "", "closer is leaking hydraulic fluid, door closes way too fast now", CLOSER, "ROUTINE", {"address"}),
    (
        "EMAIL",
        "Service request",
        "Hello,\n\nOur rear exit door closer is broken - the door slams and the arm is leaking.\n"
        "Location: 2020 Kittredge St, Berkeley, CA 94704.\n\nRegards,\nTom",
        CLOSER,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "Good morning, the door closer arm came loose and the door swings wide open in the wind. "
        "Could someone come Tuesday afternoon? 1750 Solano Ave, Berkeley",
        CLOSER,
        "ROUTINE",
        set(),
    ),
    # --- automatic operators ---
    (
        "SMS",
        "",
        "The automatic sliding door at our store entrance is stuck open and won't close. Customers are walking "
        "in and out, we need it fixed today. 3100 Broadway, Oakland CA",
        AUTO,
        "URGENT",
        set(),
    ),
    (
        "SMS",
        "",
        "Auto door sensor not detecting people, door doesn't open when you walk up. 500 Hegenberger Rd Oakland",
        AUTO,
        "ROUTINE",
        set(),
    ),
    (
        "EMAIL",
        "Door opener",
        "Bonjour, our handicap push button door opener stopped working. Address is 1200 Clay St, Oakland, CA 94612.",
        AUTO,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "The automatic doors at the clinic entrance are not opening at all, patients have to knock. URGENT",
        AUTO,
        "URGENT",
        {"address"},
    ),
    (
        "SMS",
        "",
        "Power outage last night and now the sliding doors wont open on their own",
        AUTO,
        "ROUTINE",
        {"address"},
    ),
    (
        "SMS",
        "",
        "Emergency! Customer trapped inside the vestibule, the automatic door won't open. 2100 Franklin St, Oakland",
        AUTO,
        "EMERGENCY",
        set(),
    ),
    (
        "SMS",
        "",
        "asap please!! sliding door at the entrance came off its track. 800 Marina Blvd, San Leandro",
        AUTO,
        "URGENT",
        set(),
    ),
    (
        "SMS",
        "",
        "Bonjour! Nous avons un problème — sorry, english: our automatic door opener makes a grinding noise "
        "and stops halfway. 1 Harbor Bay Pkwy, Alameda",
        AUTO,
        "ROUTINE",
        set(),
    ),
    (
        "EMAIL",
        "Lobby door",
        "Hi team,\nAt 1800 Harrison St, Oakland CA 94612, the ADA operator on the lobby door is not "
        "working - the button does nothing. Please schedule a tech this week.\nThanks, Priya",
        AUTO,
        "ROUTINE",
        set(),
    ),
    # --- cannot secure entry ---
    (
        "SMS",
        "",
        "Someone broke into our office last night and smashed the lock, we can't lock the front door. "
        "Please come asap. 2801 Telegraph Ave, Berkeley, CA 94705",
        SECURE,
        "EMERGENCY",
        set(),
    ),
    (
        "SMS",
        "",
        "EMERGENCY - store front door lock is broken and we cannot secure the building tonight",
        SECURE,
        "EMERGENCY",
        {"address"},
    ),
    (
        "SMS",
        "",
        "break-in at the warehouse, the rear door is hanging off and won't lock",
        SECURE,
        "EMERGENCY",
        {"address"},
    ),
    (
        "SMS",
        "",
        "Door was kicked in, frame is split and it can't be secured. Police just left. 1900 Webster St Alameda",
        SECURE,
        "EMERGENCY",
        set(),
    ),
    (
        "SMS",
        "",
        "URGENT: the lock on our main door is broken and we cant lock up for the night. 321 Main St, Hayward",
        SECURE,
        "EMERGENCY",
        set(),
    ),
    (
        "SMS",
        "",
        "There's been a break in at 99 Jack London Sq, Oakland. Door forced open, can't lock it. "
        "Please send someone right away",
        SECURE,
        "EMERGENCY",
        set(),
    ),
    (
        "SMS",
        "",
        "Our storefront door won't close because the top pivot broke and now it won't lock, we can't secure "
        "the store!! 1234 E 12th St, Oakland",
        SECURE,
        "EMERGENCY",
        set(),
    ),
    # --- hardware ---
    (
        "SMS",
        "",
        "Need to replace the lever handle on our bathroom door, it's loose and falling off. no rush. "
        "45 Linden St, Oakland",
        HARDWARE,
        "ROUTINE",
        set(),
    ),
    (
        "EMAIL",
        "Quote request",
        "Can you quote replacing the panic bar on our back door? The push bar is sticking a little. "
        "300 Frank Ogawa Plaza, Oakland",
        HARDWARE,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "the hinge on the front door broke, door is sagging and scraping the floor",
        HARDWARE,
        "ROUTINE",
        {"address"},
    ),
    (
        "EMAIL",
        "New locks",
        "Looking to get new locksets installed on 6 office doors, sometime next week works. "
        "1 Kaiser Plaza, Oakland, CA 94612",
        HARDWARE,
        "ROUTINE",
        set(),
    ),
    ("SMS", "", "Olá, the door handle came off in my hand! 5230 College Ave, Oakland", HARDWARE, "ROUTINE", set()),
    (
        "SMS",
        "",
        "The keypad lock on our office door is dead, need it replaced today. 2150 Shattuck Ave, Berkeley CA 94704",
        HARDWARE,
        "URGENT",
        set(),
    ),
    # --- frame or glass damage ---
    (
        "SMS",
        "",
        "Our glass door got shattered by a delivery truck, glass everywhere. 150 Harbor Way, Oakland CA 94607",
        GLASS,
        "EMERGENCY",
        set(),
    ),
    (
        "SMS",
        "",
        "cracked glass panel on the storefront door, not urgent but needs replacing",
        GLASS,
        "ROUTINE",
        {"address"},
    ),
    (
        "SMS",
        "",
        "Forklift hit the door frame in the loading dock, the frame is bent and the door rubs. Whenever you get a "
        "chance",
        GLASS,
        "ROUTINE",
        {"address"},
    ),
    (
        "SMS",
        "",
        "Xin chào, the window next to our entrance door is cracked. 960 Franklin St, Oakland",
        GLASS,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "Someone threw a rock through our front door glass last night, it's smashed but the door still locks. "
        "Need the glass replaced. 4000 MacArthur Blvd, Oakland CA",
        GLASS,
        "EMERGENCY",
        set(),
    ),
    (
        "SMS",
        "",
        "tmrw morning works. the glass in our office door has a big crack across it. 420 14th St, Oakland CA 94612",
        GLASS,
        "ROUTINE",
        set(),
    ),
    # --- not enough to go on ---
    (
        "SMS",
        "",
        "Hi there, I'd like someone to look at our front door. Thanks",
        None,
        "ROUTINE",
        {"address", "problem"},
    ),
    ("SMS", "", "door broken pls help", None, "ROUTINE", {"address", "problem"}),
    (
        "EMAIL",
        "Visit",
        "Can you come out to 1500 Park Ave, Emeryville CA? Something's wrong with our entrance.",
        None,
        "ROUTINE",
        {"problem"},
    ),
    # --- spam ---
    (
        "SMS",
        "",
        "Congratulations! You have won a FREE cruise to the Bahamas. Click here to claim your prize: http://bit.ly/xyz",
        SPAM,
        None,
        None,
    ),
    ("SMS", "", "http://cheap-pills.xyz/buy", SPAM, None, None),
    (
        "EMAIL",
        "Grow your business",
        "We offer SEO services to get your website on the first page of Google. Reply STOP to unsubscribe.",
        SPAM,
        None,
        None,
    ),
    ("SMS", "", "Earn money fast working from home!!! Visit www.get-rich-now.biz", SPAM, None, None),
    (
        "EMAIL",
        "FINAL NOTICE",
        "Your business listing will be removed. Call now to verify your account.",
        SPAM,
        None,
        None,
    ),
    # --- a second batch, written after the extractor was tuned on the messages above ---
    (
        "SMS",
        "",
        "hi my front dor wont latch at all, can u come tmrw after 3? 2715 Alcatraz Ave Berkeley",
        LATCH,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "emergancy!! glass door shattered at 1650 Mission St San Francisco CA 94103, someone could get hurt",
        GLASS,
        "EMERGENCY",
        set(),
    ),
    (
        "SMS",
        "",
        "The autmatic door at the grocery entrance keeps opening and closing by itself",
        AUTO,
        "ROUTINE",
        {"address"},
    ),
    (
        "SMS",
        "",
        "Our restroom door closer is shot, door bangs closed every time. 3939 Lakeshore Ave Oakland CA 94610",
        CLOSER,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "we got broken into overnight, back door wont lock now. need help right now",
        SECURE,
        "EMERGENCY",
        {"address"},
    ),
    (
        "SMS",
        "",
        "Can I get a price to swap the knobs on 3 doors for levers? 710 Gilman St, Berkeley",
        HARDWARE,
        "ROUTINE",
        set(),
    ),
    (
        "EMAIL",
        "Lobby door",
        "Buenas tardes - the sliding glass door at our lobby won't open automatically anymore. "
        "2000 Center St, Berkeley, CA 94704",
        AUTO,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "door frame is cracked and the door drags on the floor, 1100 Broadway Oakland",
        GLASS,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "Hello, is this the door company? Our main entrance handle is broken off. Need it fixed today if possible",
        HARDWARE,
        "URGENT",
        {"address"},
    ),
    ("SMS", "", "Please call me back about a door repair at 47 Rose St, Oakland", None, "ROUTINE", {"problem"}),
    ("SMS", "", "claim your $500 walmart gift card now >> http://tinyurl.com/abc", SPAM, None, None),
    (
        "EMAIL",
        "Unit 4 door",
        "Hi! This is Dana from Lakeside Apartments. Unit 4 front door closer leaking oil again, maybe "
        "Thursday morning? 250 Lakeside Dr, Oakland CA 94612",
        CLOSER,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "The door doesn't close by itself anymore, you have to pull it shut. 3300 Adeline St, Berkeley",
        CLOSER,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "Lock cylinder on the back door is worn out and the key sticks, please replace it. 620 Jones St, San Francisco",
        HARDWARE,
        "ROUTINE",
        set(),
    ),
    (
        "SMS",
        "",
        "Xin chào, the glass on our shop door has a small crack. Please fix it asap. 1880 Solano Ave, Albany CA",
        GLASS,
        "URGENT",
        set(),
    ),
    (
        "EMAIL",
        "Latch",
        "Click here to see photos of the broken latch: https://photos.example.com/abc - 15 Main St, Oakland",
        LATCH,
        "ROUTINE",
        set(),
    ),
    ("SMS", "", "hello", None, "ROUTINE", {"address", "problem"}),
]
