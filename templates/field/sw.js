/* The technician pages' service worker: the app shell and every job page already opened
 * stay on the phone, so they open in a basement. Pages come from the network when there is
 * one (always fresh), from this cache when there is not. Posts are never cached: the page
 * script queues them. */
"use strict";
var CACHE = "{{ version }}";
var SHELL = ["/static/css/field.css", "/static/js/field.js", "/tech/offline/"];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(SHELL); }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (name) { return name !== CACHE; }).map(function (name) { return caches.delete(name); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request).then(function (hit) {
      return hit || fetch(request).then(function (response) {
        if (response.ok) { var copy = response.clone(); caches.open(CACHE).then(function (cache) { cache.put(request, copy); }); }
        return response;
      });
    }));
    return;
  }
  if (url.pathname.indexOf("/tech/") !== 0 || url.pathname === "/tech/sw.js") { return; }
  event.respondWith(fetch(request).then(function (response) {
    if (response.ok && !response.redirected && response.type === "basic") {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
    }
    return response;
  }).catch(function () {
    return caches.match(request).then(function (hit) {
      if (hit) { return hit; }
      if (request.mode === "navigate") { return caches.match("/tech/offline/"); }
      return new Response("", { status: 503, statusText: "offline" });
    });
  }));
});
