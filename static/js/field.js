/* Technician pages: posts that survive a dead network, the signature pad, the labor timer.
 *
 * Every button's form is sent through one queue kept in IndexedDB: a post is stored first, then
 * sent, and removed only once the server has answered (success or refusal). Posts that find no
 * network wait, in order, and go out when it returns; each carries its own Idempotency-Key, so
 * a post sent twice (the answer lost on the way back) has one effect. Hand-written, no library.
 */
(function () {
  "use strict";

  var DB_NAME = "real-dispatch-field";
  var STORE = "posts";
  var RETRY_MS = 15000;
  var STALL_MS = 60000;
  // How often an open job page asks whether the job changed elsewhere (tests shorten it).
  var POLL_MS = window.FIELD_POLL_MS || 15000;
  var body = document.body;
  var badge = document.querySelector("[data-queue-badge]");
  var notices = document.querySelector("[data-notices]");
  var flushing = false;
  var delivered = 0;

  // --- the queue ---------------------------------------------------------------------------

  function openDb() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () {
        request.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function withStore(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var result = work(tx.objectStore(STORE));
        tx.oncomplete = function () { resolve(result && "result" in result ? result.result : result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }

  function queueAdd(entry) { return withStore("readwrite", function (s) { return s.add(entry); }); }
  // Only the signed-in technician's own posts: another person's waiting updates (a phone shared
  // without signing out) are never sent under this session.
  function ownEntries() {
    return withStore("readonly", function (s) { return s.getAll(); }).then(function (entries) {
      return entries.filter(function (entry) { return entry.user === body.dataset.user; });
    });
  }
  // The posts still to send, in the order they were made.
  function queueAll() {
    return ownEntries().then(function (entries) { return entries.filter(function (e) { return !e.refused; }); });
  }
  function queueRemove(id) { return withStore("readwrite", function (s) { return s.delete(id); }); }
  function queuePut(entry) { return withStore("readwrite", function (s) { return s.put(entry); }); }

  function showCount() {
    return queueAll().then(function (entries) {
      if (!badge) { return entries.length; }
      badge.hidden = entries.length === 0;
      badge.textContent = entries.length === 1 ? "1 update waiting" : entries.length + " updates waiting";
      return entries.length;
    });
  }

  function notice(text, kind) {
    if (!notices) { return; }
    var p = document.createElement("p");
    p.className = "notice notice--" + (kind || "info");
    p.textContent = text;
    notices.appendChild(p);
    setTimeout(function () { p.remove(); }, 8000);
  }

  // The page's own token, not the one stored with the post: after signing in again (which
  // rotates it) a post queued before still goes through.
  function csrfToken(entry) {
    var current = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (current) { return current.value; }
    for (var i = 0; i < entry.fields.length; i++) {
      if (entry.fields[i][0] === "csrfmiddlewaretoken") { return entry.fields[i][1]; }
    }
    return "";
  }

  // XMLHttpRequest rather than fetch: it reports upload progress for photos.
  function send(entry, progress) {
    return new Promise(function (resolve, reject) {
      var data = new FormData();
      var token = csrfToken(entry);
      entry.fields.forEach(function (pair) { data.append(pair[0], pair[0] === "csrfmiddlewaretoken" ? token : pair[1]); });
      entry.files.forEach(function (file) { data.append(file[0], file[1], file[2]); });
      var xhr = new XMLHttpRequest();
      xhr.open("POST", entry.url);
      xhr.setRequestHeader("X-Field-Fetch", "1");
      xhr.setRequestHeader("Idempotency-Key", entry.key);
      xhr.setRequestHeader("X-CSRFToken", token);
      if (progress && xhr.upload) {
        xhr.upload.onprogress = function (event) {
          if (event.lengthComputable) { progress(event.loaded / event.total); }
        };
      }
      xhr.onload = function () {
        var answer = null;
        try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = null; }
        resolve({
          status: xhr.status, answer: answer, signedOut: /\/tech\/login\//.test(xhr.responseURL || ""),
          retryAfter: parseInt(xhr.getResponseHeader("Retry-After") || "", 10) || 0
        });
      };
      // A slow uplink may take minutes over a big photo; only a transfer that stops moving
      // (or an answer that never comes) is given up, and retried later.
      var lastMove = Date.now();
      var watchdog = setInterval(function () { if (Date.now() - lastMove > STALL_MS) { xhr.abort(); } }, 5000);
      if (xhr.upload) {
        xhr.upload.addEventListener("progress", function () { lastMove = Date.now(); });
        xhr.upload.addEventListener("load", function () { lastMove = Date.now(); });
      }
      xhr.onloadend = function () { clearInterval(watchdog); };
      xhr.onerror = function () { reject(new Error("network")); };
      xhr.onabort = function () { reject(new Error("network")); };
      xhr.send(data);
    });
  }

  var progressBars = {};
  // Posts the technician was told are waiting on a server in trouble (told once each).
  var toldWaiting = {};

  // A server that asked to be left alone for a while (Retry-After on a 503) is not sent the
  // waiting posts again before then: a photo is megabytes of the technician's data plan.
  var resumeAt = 0;

  function flush() {
    if (flushing || Date.now() < resumeAt) { return Promise.resolve(); }
    flushing = true;
    var stop = false;
    return queueAll().then(function (entries) {
      return entries.reduce(function (chain, entry) {
        return chain.then(function () {
          if (stop) { return; }
          return send(entry, progressBars[entry.key]).then(function (result) {
            // A server in trouble (5xx) is retried later, like a dead network. The bar that ran
            // to its end while the bytes went up is taken back, and the technician is told once
            // that the post waits on the phone (a file store out of reach answers 503).
            if (result.status >= 500) {
              stop = true;
              resumeAt = Date.now() + result.retryAfter * 1000;
              if (progressBars[entry.key]) { progressBars[entry.key](0, "Not saved yet, sent again by itself"); }
              if (!toldWaiting[entry.id]) {
                toldWaiting[entry.id] = true;
                notice(entry.label + ": not saved yet, the server could not store it right now. " +
                  "It stays on this phone and is sent again by itself.", "error");
              }
              return;
            }
            // Signed out, or a page too old for its security token: the post waits on the phone
            // until the technician signs in again or reloads; it is not an answer.
            if (result.signedOut || result.status === 401 || (result.status === 403 && !result.answer)) {
              stop = true;
              signInNotice();
              return;
            }
            result.answer = result.answer || { message: "The server answered " + result.status + "." };
            if (!(result.status >= 200 && result.status < 300) && entry.files.length) {
              // A refused photo or signature may exist nowhere else: it stays on the phone, out of
              // the queue, until the technician saves it to the phone or lets it go.
              entry.refused = result.answer.message || "Refused.";
              return queuePut(entry).then(function () {
                notice(entry.label + ": " + entry.refused, "error");
                showNotSent();
              });
            }
            // Answered: delivered or refused, either way it has left the queue.
            return queueRemove(entry.id).then(function () {
              if (result.status >= 200 && result.status < 300) {
                delivered += 1;
                notice(result.answer.message || entry.label + " saved.", "success");
              } else {
                showMissing(result.answer);
                notice(entry.label + ": " + (result.answer.message || "refused."), "error");
              }
              if (progressBars[entry.key]) { progressBars[entry.key](1); }
            });
          }, function () { stop = true; });
        });
      }, Promise.resolve());
    }).then(function () {
      flushing = false;
      return showCount();
    }, function () { flushing = false; }).then(function (waiting) {
      if (delivered > 0 && waiting === 0 && body.dataset.job) {
        delivered = 0;
        setTimeout(refresh, 600);
      }
    });
  }

  // --- refused files, kept on the phone -------------------------------------------------------

  function showNotSent() {
    var box = document.querySelector("[data-not-sent]");
    if (!box) { return; }
    ownEntries().then(function (entries) {
      var refused = entries.filter(function (e) { return e.refused; });
      box.hidden = refused.length === 0;
      var list = box.querySelector("ul");
      list.textContent = "";
      refused.forEach(function (entry) {
        entry.files.forEach(function (file) {
          var li = document.createElement("li");
          var what = document.createElement("span");
          what.textContent = entry.label + " (" + file[2] + "): " + entry.refused;
          var save = document.createElement("a");
          save.className = "button button--quiet";
          save.textContent = "Save to this phone";
          save.href = URL.createObjectURL(file[1]);
          save.download = file[2];
          var drop = document.createElement("button");
          drop.type = "button";
          drop.className = "link-button";
          drop.textContent = "Discard";
          drop.addEventListener("click", function () { queueRemove(entry.id).then(showNotSent); });
          li.appendChild(what); li.appendChild(save); li.appendChild(drop);
          list.appendChild(li);
        });
      });
    });
  }

  var signInShown = false;

  function signInNotice() {
    if (signInShown || !notices) { return; }
    signInShown = true;
    var p = document.createElement("p");
    p.className = "notice notice--error";
    p.appendChild(document.createTextNode("Your updates are kept on this phone. "));
    var link = document.createElement("a");
    link.href = "/tech/login/?next=" + encodeURIComponent(location.pathname);
    link.textContent = "Sign in again to send them.";
    p.appendChild(link);
    notices.appendChild(p);
  }

  // Something typed, chosen or drawn that has not been saved yet.
  function unsavedInput() {
    var dirty = false;
    document.querySelectorAll("form[data-field-form]").forEach(function (form) {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.type === "file" && el.files && el.files.length) { dirty = true; }
        if ((el.tagName === "TEXTAREA" || el.type === "text" || el.type === "number") && el.value !== el.defaultValue) { dirty = true; }
      });
      var pad = pads.get(form);
      if (pad && !pad.isEmpty()) { dirty = true; }
    });
    return dirty;
  }

  // Show the job as it now is, unless that would throw away what the technician is entering.
  var refreshOffered = false;
  function refresh() {
    if (!unsavedInput()) { location.reload(); return; }
    if (refreshOffered || !notices) { return; }
    refreshOffered = true;
    var p = document.createElement("p");
    p.className = "notice notice--info";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "link-button";
    button.textContent = "This job was updated. Show the latest";
    button.addEventListener("click", function () { location.reload(); });
    p.appendChild(button);
    notices.appendChild(p);
  }

  function showMissing(answer) {
    if (!answer || !answer.missing || !answer.missing.length || !notices) { return; }
    var box = document.createElement("div");
    box.className = "notice notice--error";
    box.appendChild(document.createTextNode("Still missing: "));
    answer.missing.forEach(function (item, index) {
      var link = document.createElement("a");
      link.href = "#" + item.anchor;
      link.textContent = item.label;
      box.appendChild(link);
      if (index < answer.missing.length - 1) { box.appendChild(document.createTextNode(", ")); }
    });
    notices.appendChild(box);
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40; bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function entryFor(form, extraFiles, label) {
    var fields = [];
    var files = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled) { return; }
      if (el.type === "file") { return; }
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { return; }
      if (el.name === "idempotency_key") { return; }
      fields.push([el.name, el.value]);
    });
    (extraFiles || []).forEach(function (file) { files.push(file); });
    var key = newKey();
    fields.push(["idempotency_key", key]);
    return {
      url: form.action, fields: fields, files: files, key: key, user: body.dataset.user,
      label: label || form.dataset.label || "Update", created: Date.now()
    };
  }

  function withPosition(form) {
    if (!("geo" in form.dataset) || !navigator.geolocation) { return Promise.resolve(); }
    return new Promise(function (resolve) {
      navigator.geolocation.getCurrentPosition(function (pos) {
        form.elements.lat.value = pos.coords.latitude.toFixed(6);
        form.elements.lng.value = pos.coords.longitude.toFixed(6);
        form.elements.accuracy.value = Math.round(pos.coords.accuracy);
        resolve();
      }, function () { resolve(); }, { timeout: 5000, maximumAge: 60000 });
    });
  }

  function progressRow(form, name) {
    var holder = form.querySelector("[data-uploads]");
    if (!holder) { return null; }
    var row = document.createElement("div");
    row.className = "upload";
    var label = document.createElement("span");
    label.textContent = name;
    var bar = document.createElement("progress");
    bar.max = 1; bar.value = 0;
    // Where the technician is looking (the notices are at the top of the page): why it waits.
    var state = document.createElement("span");
    state.className = "upload-state";
    row.appendChild(label); row.appendChild(bar); row.appendChild(state);
    holder.appendChild(row);
    return function (fraction, note) {
      bar.value = fraction;
      state.textContent = note || "";
      row.classList.toggle("upload--waiting", Boolean(note));
    };
  }

  function submit(form, event) {
    event.preventDefault();
    var button = form.querySelector("[type=submit]");
    if (button) { button.disabled = true; }
    var pressed = form.elements.pressed_at;
    if (pressed) { pressed.value = new Date().toISOString(); }
    var prepared = withPosition(form).then(function () {
      if ("signature" in form.dataset) { return signatureEntries(form); }
      if ("splitFiles" in form.dataset) {
        // One post per photo: each has its own progress, key and place in the queue.
        var input = form.querySelector("input[type=file]");
        return Array.prototype.map.call(input.files, function (file) {
          var entry = entryFor(form, [["file", file, file.name]], form.dataset.label + " " + file.name);
          progressBars[entry.key] = progressRow(form, file.name);
          return entry;
        });
      }
      return [entryFor(form)];
    });
    prepared.then(function (entries) {
      if (!entries || !entries.length) { return; }
      return entries.reduce(function (chain, entry) {
        return chain.then(function () { return queueAdd(entry); });
      }, Promise.resolve()).then(function () {
        // Queued: the form empties so a second press is not a second update. The checklist keeps
        // its ticks, which are what was just saved.
        if (!("keep" in form.dataset)) { form.reset(); }
        if (pads.get(form)) { pads.get(form).clear(); }
        return showCount();
      }).then(flush);
    }).catch(function (error) {
      notice("Could not keep this update on the phone: " + error, "error");
    }).then(function () {
      if (button) { button.disabled = false; }
    });
  }

  // --- the signature pad ---------------------------------------------------------------------

  var pads = new WeakMap();

  function setUpPad(form) {
    var canvas = form.querySelector("canvas");
    var ctx = canvas.getContext("2d");
    var strokes = [];
    var current = null;
    function redraw() {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.lineWidth = 3; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#10202f";
      strokes.forEach(function (stroke) {
        ctx.beginPath();
        stroke.forEach(function (p, i) { if (i === 0) { ctx.moveTo(p[0], p[1]); } else { ctx.lineTo(p[0], p[1]); } });
        if (stroke.length === 1) { ctx.lineTo(stroke[0][0] + 0.1, stroke[0][1]); }
        ctx.stroke();
      });
    }
    function point(event) {
      var box = canvas.getBoundingClientRect();
      return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
    }
    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      current = [point(event)];
      strokes.push(current);
      redraw();
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!current) { return; }
      event.preventDefault();
      current.push(point(event));
      redraw();
    });
    function end() { current = null; }
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    form.querySelector("[data-sig-undo]").addEventListener("click", function () { strokes.pop(); redraw(); });
    form.querySelector("[data-sig-clear]").addEventListener("click", function () { strokes = []; redraw(); });
    pads.set(form, {
      canvas: canvas,
      isEmpty: function () { return strokes.length === 0; },
      clear: function () { strokes = []; redraw(); }
    });
  }

  function signatureEntries(form) {
    var pad = pads.get(form);
    if (pad.isEmpty()) { notice("Ask the customer to sign in the box first.", "error"); return Promise.resolve([]); }
    if (!form.elements.signer_name.value.trim()) { notice("Type the name of the person who signed.", "error"); return Promise.resolve([]); }
    return new Promise(function (resolve) {
      pad.canvas.toBlob(function (blob) { resolve([entryFor(form, [["file", blob, "signature.png"]])]); }, "image/png");
    });
  }

  // --- the labor timer -----------------------------------------------------------------------

  function setUpTimer(box) {
    var form = document.querySelector("[data-timer-form]");
    var storageKey = "field-timer-" + box.dataset.timer;
    var clock = box.querySelector("[data-timer-clock]");
    var start = box.querySelector("[data-timer-start]");
    var stop = box.querySelector("[data-timer-stop]");
    var tick = null;
    box.hidden = false;
    function running() { return Number(localStorage.getItem(storageKey) || 0); }
    function render() {
      var since = running();
      start.hidden = !!since; stop.hidden = !since;
      var seconds = since ? Math.floor((Date.now() - since) / 1000) : 0;
      clock.textContent = ("0" + Math.floor(seconds / 3600)).slice(-2) + ":" + ("0" + Math.floor(seconds / 60) % 60).slice(-2);
    }
    start.addEventListener("click", function () { localStorage.setItem(storageKey, String(Date.now())); render(); });
    stop.addEventListener("click", function () {
      var minutes = Math.max(1, Math.ceil((Date.now() - running()) / 60000));
      localStorage.removeItem(storageKey);
      render();
      form.elements.minutes.value = Math.min(minutes, 1440);
      if (!form.elements.description.value) { form.elements.description.value = "Timed on site"; }
      form.requestSubmit();
    });
    render();
    tick = setInterval(render, 15000);
    return tick;
  }

  // --- live state: an approval decided elsewhere -----------------------------------------------

  function poll() {
    var url = body.dataset.stateUrl;
    if (!url || document.hidden || !navigator.onLine) { return; }
    // X-Dispatch-Poll: a check the page makes by itself keeps no signed-in session alive.
    fetch(url, { headers: { "X-Field-Fetch": "1", "X-Dispatch-Poll": "1" }, credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (state) {
      if (state && String(state.version) !== body.dataset.version) {
        queueAll().then(function (entries) { if (!entries.length) { refresh(); } });
      }
    }).catch(function () {});
  }

  // --- signing out on a shared phone ----------------------------------------------------------

  // The next person on this phone must not find this technician's jobs (door codes, customers'
  // numbers) in the offline copy, nor send this technician's waiting updates as their own.
  function signOut(form, event) {
    event.preventDefault();
    ownEntries().then(function (entries) {
      if (entries.length && !window.confirm(entries.length + " update(s) not sent yet will be lost. Sign out anyway?")) {
        return;
      }
      var wipes = [withStore("readwrite", function (store) { return store.clear(); })];
      if (window.caches) {
        wipes.push(caches.keys().then(function (names) { return Promise.all(names.map(function (n) { return caches.delete(n); })); }));
      }
      Object.keys(localStorage).forEach(function (key) { if (key.indexOf("field-timer-") === 0) { localStorage.removeItem(key); } });
      Promise.all(wipes).catch(function () {}).then(function () { form.submit(); });
    }, function () { form.submit(); });
  }

  // --- wiring --------------------------------------------------------------------------------

  document.querySelectorAll("form[data-sign-out]").forEach(function (form) {
    form.addEventListener("submit", function (event) { signOut(form, event); });
  });

  document.querySelectorAll("form[data-field-form]").forEach(function (form) {
    if ("signature" in form.dataset) { setUpPad(form); }
    form.addEventListener("submit", function (event) { submit(form, event); });
  });
  document.querySelectorAll("[data-timer]").forEach(setUpTimer);

  window.addEventListener("online", flush);
  setInterval(function () { if (navigator.onLine) { flush(); } }, RETRY_MS);
  setInterval(poll, POLL_MS);
  showCount().then(function (waiting) { if (waiting) { flush(); } });
  showNotSent();

  if ("serviceWorker" in navigator && body.dataset.sw) {
    navigator.serviceWorker.register(body.dataset.sw, { scope: "/tech/" }).catch(function () {});
    // The page that installed the worker was loaded before it: fetch it once more through the
    // worker so it, too, opens with no network.
    if (!navigator.serviceWorker.controller) {
      navigator.serviceWorker.addEventListener("controllerchange", function () {
        fetch(location.href, { credentials: "same-origin" }).catch(function () {});
      }, { once: true });
    }
  }
})();
