/* The dispatch board's own behaviour: place the lanes' blocks on the time axis, drag a scheduled
   job to another technician or time (pointer events, 15-minute snap), ask the server to move it,
   and put it back with the server's reason when the move is refused; keep the clocks moving (the
   now line, ages, SLA countdowns) between refreshes. htmx does the rest (polling, the side panel,
   booking).

   A poll carries the version of what #bd-live shows (its own hx-headers) and is answered 204 No
   Content, not swapped, while nothing changed; the clocks are therefore the page's to move.

   The server re-checks every rule on each move; nothing here decides whether a move is allowed. */
(function () {
  "use strict";

  var SNAP_MINUTES = 15;
  var DRAG_THRESHOLD_PX = 5;
  var drag = null;          // the drag in progress, if any
  var pending = false;      // a move request is on its way: the lanes must not be swapped under it
  var suppressClick = false;
  var selectedTicket = null;
  var selectedVisit = null;        // the selected block's visit (a crew or multi-day job), if any
  var selectedAppointment = null;
  var CLOCK_MS = 15000;
  var skew = 0;             // the server's clock minus this browser's, from the last refresh
  var clockOf = null;       // the #bd-live element the skew was read from

  // A refusal (400/409) comes back as the panel explaining why: show it instead of dropping it.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "40[09]", swap: true },
    { code: "[45]..", swap: false, error: true },
  ];

  function board() { return document.getElementById("bd"); }
  function live() { return document.getElementById("bd-live"); }

  function csrfToken() {
    var headers = board() && board().getAttribute("hx-headers");
    try { return JSON.parse(headers)["X-CSRFToken"]; } catch (e) { return ""; }
  }

  var timeFormat = null;
  function clock(ms) {
    if (!timeFormat) {
      timeFormat = new Intl.DateTimeFormat("en-GB", {
        hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: board().dataset.zone,
      });
    }
    return timeFormat.format(new Date(ms));
  }

  // --- positions on the time axis -----------------------------------------------------------------

  // The server sends each tick, shade, drive and job as data-left / data-width (percent of the
  // axis). The Content-Security-Policy refuses style attributes, but not styles set through the
  // CSSOM, so they are applied here: now, and after every swap of the lanes (see below).
  function place(root) {
    root.querySelectorAll(".bd-track [data-left], .bd-axis__track [data-left]").forEach(function (el) {
      el.style.left = el.dataset.left + "%";
      if (el.dataset.width) el.style.width = el.dataset.width + "%";
    });
    // A phone lists a lane's jobs and time off one under the other: in the order of the day, which
    // their places on the axis already are (the lanes, absolutely placed, ignore it).
    root.querySelectorAll(".bd-track .bd-block, .bd-track .bd-shade--timeoff").forEach(function (el) {
      el.style.order = String(Math.round(Number(el.dataset.left) * 1000));
    });
  }

  // --- a phone: one technician's lane at a time ---------------------------------------------------

  // As board.css's phone layout; there the jobs are tapped, not dragged.
  var PHONE = window.matchMedia("(max-width: 600px)");
  // Kept for the tab (a refresh, another day, a reload show the same technician).
  var LANE_KEY = "board.phone-lane";
  var chosenLane = null;

  function storedLane() {
    try { return window.sessionStorage.getItem(LANE_KEY); } catch (e) { return null; }
  }

  function rememberLane(id) {
    chosenLane = id;
    try { window.sessionStorage.setItem(LANE_KEY, id); } catch (e) { /* private mode: this page remembers it */ }
  }

  function laneIds(root) {
    return Array.prototype.map.call(root.querySelectorAll(".bd-lane .bd-track"), function (track) {
      return track.dataset.technicianId;
    });
  }

  // Show the chosen technician's lane (the first when that technician is not on the board), and
  // set the picker to it. Run on load and on every render of the lanes; it changes only what differs.
  function showLane() {
    var root = live();
    if (!root) return;
    var ids = laneIds(root);
    if (!ids.length) return;
    var index = ids.indexOf(chosenLane || storedLane());
    if (index < 0) index = 0;
    root.querySelectorAll(".bd-lane").forEach(function (lane, i) {
      if (lane.classList.contains("bd-lane--shown") !== (i === index)) lane.classList.toggle("bd-lane--shown");
    });
    var select = root.querySelector(".bd-picker__select");
    if (select && select.value !== ids[index]) select.value = ids[index];
    root.querySelectorAll("[data-lane-step]").forEach(function (button) {
      var next = index + Number(button.dataset.laneStep);
      button.disabled = next < 0 || next >= ids.length;
    });
    var position = root.querySelector("[data-lane-position]");
    if (position) setText(position, String(index + 1));
  }

  function stepLane(step) {
    var ids = laneIds(live());
    var current = live().querySelector(".bd-lane--shown .bd-track");
    var index = current ? ids.indexOf(current.dataset.technicianId) : 0;
    var next = Math.max(0, Math.min(ids.length - 1, index + step));
    rememberLane(ids[next]);
    showLane();
  }

  // --- clocks: the now line, ages and SLA countdowns between refreshes ---------------------------

  // The server's time: the browser's clock corrected by the last refresh's data-generated.
  function now() { return Date.now() + skew; }

  // Once per rendering of the lanes (a 204 leaves the element, and the skew, as they were).
  function syncClock() {
    var root = live();
    if (!root || root === clockOf) return;
    clockOf = root;
    var generated = Date.parse(root.dataset.generated);
    if (!isNaN(generated)) skew = generated - Date.now();
  }

  // Every answer of the refresh carries the server's time (X-Board-Now), a 204 included: the skew
  // follows it, and the "checked" time shows the board is still being kept up to date.
  var checkedFormat = null;
  function checked(event) {
    var xhr = event.detail && event.detail.xhr;
    var root = live();
    if (!xhr || !root || event.detail.elt !== root || !event.detail.successful) return;
    var serverNow = Date.parse(xhr.getResponseHeader("X-Board-Now") || "");
    if (isNaN(serverNow)) return;
    skew = serverNow - Date.now();
    if (!checkedFormat) {
      checkedFormat = new Intl.DateTimeFormat("en-GB", {
        hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone: board().dataset.zone,
      });
    }
    // After a swap the new element shows its own render time; after a 204 the old one moves on.
    var label = live().querySelector("[data-checked]");
    if (label) setText(label, checkedFormat.format(new Date(serverNow)));
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function setHidden(el, hidden) {
    if (el.hidden !== hidden) el.hidden = hidden;
  }

  // As the server words them (board.py's _age and the SLA clock of tickets/selectors.py).
  function age(ms) {
    var minutes = Math.max(0, Math.floor(ms / 60000));
    if (minutes < 1) return "now";
    if (minutes < 60) return minutes + " min";
    if (minutes < 48 * 60) return Math.floor(minutes / 60) + " h";
    return Math.floor(minutes / (24 * 60)) + " d";
  }

  function hoursMinutes(total) {
    var sign = total < 0 ? "-" : "";
    var rest = Math.abs(total);
    var hours = Math.floor(rest / 60), minutes = rest % 60;
    return sign + (hours < 10 ? "0" : "") + hours + ":" + (minutes < 10 ? "0" : "") + minutes;
  }

  function tick() {
    var root = live();
    if (!root) return;
    var t = now();
    if (root.dataset.today === "true") {
      var axisStart = Date.parse(root.dataset.axisStart);
      var pct = (t - axisStart) / 60000 / Number(root.dataset.axisMinutes) * 100;
      var inside = pct >= 0 && pct <= 100;
      var left = pct.toFixed(3) + "%";
      root.querySelectorAll(".bd-now").forEach(function (el) {
        setHidden(el, !inside);
        if (inside && el.style.left !== left) el.style.left = left;
      });
    }
    root.querySelectorAll("[data-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.since);
      if (!isNaN(since)) setText(el, age(t - since));
    });
    var warning = Number(root.dataset.slaWarningMinutes);
    root.querySelectorAll("[data-sla-deadline]").forEach(function (el) {
      var deadline = Date.parse(el.dataset.slaDeadline);
      if (isNaN(deadline)) return;
      var remaining = Math.floor((deadline - t) / 60000);
      var status = remaining < 0 ? "breach" : remaining <= warning ? "warning" : "healthy";
      var wanted = "bd-sla bd-sla--" + status;
      if (el.className !== wanted) el.className = wanted;
      setHidden(el, status === "healthy");
      if (status === "breach") setText(el, "SLA missed " + hoursMinutes(remaining));
      else if (status === "warning") setText(el, "SLA " + hoursMinutes(remaining) + " left");
    });
  }

  // --- the notice above the lanes ----------------------------------------------------------------

  var noticeTimer = null;
  function notice(kind, message, reasons, code) {
    var box = document.getElementById("bd-notice");
    if (!box) return;
    box.className = "bd-notice bd-notice--" + kind;
    box.setAttribute("role", kind === "refused" ? "alert" : "status");
    box.textContent = "";
    var text = document.createElement("div");
    text.className = "bd-notice__text";
    var strong = document.createElement("strong");
    strong.textContent = kind === "refused" ? "Not moved — " : "Moved — ";
    text.appendChild(strong);
    text.appendChild(document.createTextNode(message));
    if (code) {
      var codeEl = document.createElement("span");
      codeEl.className = "bd-notice__code";
      codeEl.textContent = code;
      text.appendChild(codeEl);
    }
    // The message already carries the reasons joined; list them when there are several.
    if (reasons && reasons.length > 1) {
      var list = document.createElement("ul");
      reasons.forEach(function (reason) {
        var item = document.createElement("li");
        item.textContent = reason;
        list.appendChild(item);
      });
      text.appendChild(list);
    }
    var close = document.createElement("button");
    close.type = "button";
    close.className = "bd-notice__close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () { box.hidden = true; });
    box.appendChild(text);
    box.appendChild(close);
    box.hidden = false;
    clearTimeout(noticeTimer);
    if (kind === "ok") noticeTimer = setTimeout(function () { box.hidden = true; }, 8000);
  }

  // --- drag and drop -----------------------------------------------------------------------------

  function tracks() { return Array.prototype.slice.call(live().querySelectorAll(".bd-track")); }

  function trackAt(clientY) {
    var all = tracks();
    var best = null, bestDistance = Infinity;
    all.forEach(function (track) {
      var rect = track.getBoundingClientRect();
      var distance = clientY < rect.top ? rect.top - clientY : clientY > rect.bottom ? clientY - rect.bottom : 0;
      if (distance < bestDistance) { best = track; bestDistance = distance; }
    });
    return best;
  }

  function onPointerDown(event) {
    var block = event.target.closest(".bd-block");
    if (!block || event.button !== 0 || pending || block.dataset.movable !== "true" || PHONE.matches) return;
    var container = live();
    var axisStart = Date.parse(container.dataset.axisStart);
    var axisMinutes = Number(container.dataset.axisMinutes);
    var start = Date.parse(block.dataset.start);
    drag = {
      block: block,
      origin: block.parentElement,
      pointerId: event.pointerId,
      x: event.clientX,
      y: event.clientY,
      grab: event.clientX - block.getBoundingClientRect().left,
      axisStart: axisStart,
      axisMinutes: axisMinutes,
      minutes: (Date.parse(block.dataset.end) - start) / 60000,
      startMinute: Math.round((start - axisStart) / 60000),
      moved: false,
      target: null,
      targetMinute: null,
      label: null,
    };
    block.setPointerCapture(event.pointerId);
  }

  function onPointerMove(event) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    if (!drag.moved) {
      if (Math.hypot(event.clientX - drag.x, event.clientY - drag.y) < DRAG_THRESHOLD_PX) return;
      drag.moved = true;
      drag.block.classList.add("bd-block--dragging");
      drag.label = document.createElement("div");
      drag.label.className = "bd-drag-label";
      document.body.appendChild(drag.label);
    }
    event.preventDefault();
    var target = trackAt(event.clientY);
    var rect = target.getBoundingClientRect();
    var minute = ((event.clientX - drag.grab) - rect.left) / rect.width * drag.axisMinutes;
    minute = Math.round(minute / SNAP_MINUTES) * SNAP_MINUTES;
    minute = Math.max(0, Math.min(drag.axisMinutes - drag.minutes, minute));
    if (drag.target !== target) {
      if (drag.target) drag.target.classList.remove("bd-track--target");
      target.classList.add("bd-track--target");
      drag.target = target;
    }
    drag.targetMinute = minute;
    var originRect = drag.origin.getBoundingClientRect();
    var left = rect.left - originRect.left + minute / drag.axisMinutes * rect.width;
    drag.block.style.transform =
      "translate(" + (left - drag.block.offsetLeft) + "px," + (rect.top - originRect.top) + "px)";
    var startMs = drag.axisStart + minute * 60000;
    drag.label.textContent =
      target.dataset.technicianName + " · " + clock(startMs) + "–" + clock(startMs + drag.minutes * 60000);
    drag.label.style.left = event.clientX + 14 + "px";
    drag.label.style.top = event.clientY - 34 + "px";
  }

  function dragEnd(state) {
    if (state.label) state.label.remove();
    if (state.target) state.target.classList.remove("bd-track--target");
    state.block.classList.remove("bd-block--dragging");
  }

  function snapBack(block) {
    block.classList.add("bd-block--returning");
    block.style.transform = "";
    setTimeout(function () { block.classList.remove("bd-block--returning"); }, 300);
  }

  function onPointerUp(event) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    var current = drag;
    drag = null;
    if (!current.moved) return;  // a plain click: the click handler opens the panel
    suppressClick = true;
    dragEnd(current);
    var sameLane = current.target === current.origin;
    if (sameLane && current.targetMinute === current.startMinute) {
      snapBack(current.block);
      return;
    }
    move(current, current.target.dataset.technicianId, current.axisStart + current.targetMinute * 60000);
  }

  function onPointerCancel(event) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    var current = drag;
    drag = null;
    if (current.moved) dragEnd(current);
    snapBack(current.block);
  }

  function move(state, technicianId, startMs) {
    var block = state.block;
    var body = new FormData();
    body.append("appointment_id", block.dataset.appointmentId);
    body.append("technician_id", technicianId);
    body.append("start", new Date(startMs).toISOString());
    pending = true;
    block.classList.add("bd-block--pending");
    fetch(board().dataset.moveUrl, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().catch(function () {
          return { ok: false, message: "The server did not answer (HTTP " + response.status + ")." };
        });
      })
      .catch(function () {
        return { ok: false, message: "The server could not be reached; nothing was changed." };
      })
      .then(function (answer) {
        pending = false;
        block.classList.remove("bd-block--pending");
        if (answer.ok) {
          notice("ok", answer.message);
        } else {
          snapBack(block);
          block.classList.add("bd-block--refused");
          notice("refused", answer.message, answer.reasons, answer.code);
        }
        // Either way, show the schedule as it now is (a refusal may be someone else's change).
        setTimeout(function () { htmx.trigger(document.body, "board-changed"); }, answer.ok ? 0 : 1200);
      });
  }

  // --- clicks: open a ticket in the side panel -------------------------------------------------

  function markSelected() {
    var root = live();
    if (!root) return;
    root.querySelectorAll(".bd-qitem--selected").forEach(function (el) { el.classList.remove("bd-qitem--selected"); });
    root.querySelectorAll(".bd-block--focus").forEach(function (el) { el.classList.remove("bd-block--focus"); });
    root.querySelectorAll(".bd-block--linked").forEach(function (el) { el.classList.remove("bd-block--linked"); });
    if (!selectedTicket) return;
    root.querySelectorAll('[data-ticket-id="' + selectedTicket + '"]').forEach(function (el) {
      el.classList.add(el.classList.contains("bd-block") ? "bd-block--focus" : "bd-qitem--selected");
    });
    // The other parts of a crew's or a run's visit (other lanes, the same day) are shown linked.
    if (!selectedVisit) return;
    root.querySelectorAll('.bd-block[data-visit="' + selectedVisit + '"]').forEach(function (el) {
      if (el.dataset.appointmentId === selectedAppointment) return;
      el.classList.remove("bd-block--focus");
      el.classList.add("bd-block--linked");
    });
  }

  function openPanel(url) {
    htmx.ajax("GET", url, { target: "#bd-panel", swap: "innerHTML" });
  }

  var EMPTY_PANEL =
    '<p class="bd-panel__empty">Pick a ticket from the queue to see the best windows, or drag a scheduled job to another time or technician.</p>';

  function closePanel() {
    selectedTicket = null;
    selectedVisit = null;
    markSelected();
    document.getElementById("bd-panel").innerHTML = EMPTY_PANEL;
    // On a phone the sheet covered the list: back to the job it was opened from.
    if (PHONE.matches && panelOpener && document.contains(panelOpener)) panelOpener.focus();
    panelOpener = null;
  }

  var panelOpener = null;

  function onClick(event) {
    var step = event.target.closest("[data-lane-step]");
    if (step) {
      stepLane(Number(step.dataset.laneStep));
      return;
    }
    // On a phone the panel is a sheet over a shaded page: a tap on the shade closes it.
    if (PHONE.matches && event.target.id === "bd-panel") {
      closePanel();
      return;
    }
    var opener = event.target.closest(".bd-block, .bd-qitem, .bd-esc");
    if (opener) {
      if (suppressClick && opener.classList.contains("bd-block")) {
        suppressClick = false;
        event.preventDefault();
        return;
      }
      // Ctrl/Cmd/Shift/middle click still opens the ticket page itself (the element is a link to it).
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      selectedTicket = opener.dataset.ticketId;
      panelOpener = opener;
      selectedVisit = opener.dataset.visit || null;
      selectedAppointment = opener.dataset.appointmentId || null;
      markSelected();
      openPanel(opener.dataset.panelUrl);
      return;
    }
    if (event.target.closest("[data-panel-close]")) closePanel();
  }

  // --- keep the page steady while it refreshes itself --------------------------------------------

  var queueScroll = 0;
  document.addEventListener("htmx:beforeRequest", function (event) {
    // Never swap the lanes under a block being dragged or a move awaiting its answer.
    if ((drag || pending) && event.detail.elt && event.detail.elt.id === "bd-live") event.preventDefault();
  });
  document.addEventListener("htmx:configRequest", function (event) {
    // A booking or a move made here (board-changed) asks for the day as it is, whatever the
    // version: the lanes must lose the dragged block's marks even when the move was refused.
    var trigger = event.detail.triggeringEvent;
    if (event.detail.elt && event.detail.elt.id === "bd-live" && trigger && trigger.type === "board-changed") {
      delete event.detail.headers["X-Board-Version"];
    }
  });
  // Placed right after the swap, in the same task, so the new lanes never paint unplaced (and a
  // phone never paints another technician's lane than the one picked).
  document.addEventListener("htmx:afterSwap", function (event) {
    place(event.target);
    showLane();
    // A sheet that opened on a phone takes the focus, so the keyboard and a screen reader are in it.
    if (PHONE.matches && event.target.id === "bd-panel") {
      var close = event.target.querySelector("[data-panel-close]");
      if (close) close.focus();
    }
  });
  document.addEventListener("htmx:afterRequest", checked);
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "bd-live") {
      var list = document.querySelector(".bd-queue__list");
      queueScroll = list ? list.scrollTop : 0;
    }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    place(event.target);
    var list = document.querySelector(".bd-queue__list");
    if (list) list.scrollTop = queueScroll;
    markSelected();
    syncClock();
    tick();
  });

  place(document);  // the script is deferred: the lanes are parsed by now
  showLane();
  syncClock();
  tick();
  setInterval(tick, CLOCK_MS);
  // Back to a tab left in the background: ask at once (a poll, so 204 when nothing changed).
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && live()) {
      tick();
      htmx.trigger(document.body, "board-poll");
    }
  });
  document.addEventListener("pointerdown", onPointerDown);
  document.addEventListener("pointermove", onPointerMove);
  document.addEventListener("pointerup", onPointerUp);
  document.addEventListener("pointercancel", onPointerCancel);
  document.addEventListener("click", onClick);
  // Links must not start the browser's own drag of a URL.
  document.addEventListener("dragstart", function (event) {
    if (event.target.closest && event.target.closest(".bd-block")) event.preventDefault();
  });
  document.addEventListener("change", function (event) {
    if (event.target.classList.contains("bd-autosubmit")) event.target.form.requestSubmit();
    if (event.target.classList.contains("bd-picker__select")) {
      rememberLane(event.target.value);
      showLane();
    }
  });
  document.addEventListener("keydown", function (event) {
    var panel = document.getElementById("bd-panel");
    if (event.key === "Escape" && PHONE.matches && panel && panel.querySelector(".bd-card")) closePanel();
  });
})();
