// Live refresh of the console's pages, served by the site itself (no CDN, no framework).
//
// An element with data-live-url names a URL that answers {"parts": {name: html}}; every
// data-live-seconds seconds (and when the tab becomes visible again) each element
// data-live="name" gets its new HTML. Nothing happens while the tab is hidden. When the
// session has ended the page reloads (and lands on the login page); when the server cannot be
// reached the parts are dimmed until it answers again. Without JavaScript the page's
// <noscript> refresh reloads it instead.
(function () {
  "use strict";
  var root = document.querySelector("[data-live-url]");
  if (!root || !window.fetch) return;
  var url = root.getAttribute("data-live-url");
  var every = 1000 * (parseInt(root.getAttribute("data-live-seconds"), 10) || 30);
  var busy = false;

  function parts() {
    return document.querySelectorAll("[data-live]");
  }

  function stale(on) {
    parts().forEach(function (el) { el.classList.toggle("live-stale", on); });
  }

  function apply(data) {
    Object.keys(data.parts || {}).forEach(function (name) {
      var el = document.querySelector('[data-live="' + name + '"]');
      if (el) el.innerHTML = data.parts[name];
    });
    stale(false);
    document.dispatchEvent(new CustomEvent("live:updated"));
  }

  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        var json = (response.headers.get("Content-Type") || "").indexOf("json") >= 0;
        if (response.redirected || !json) { window.location.reload(); return null; }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) { if (data) apply(data); })
      .catch(function () { stale(true); })
      .then(function () { busy = false; });
  }

  setInterval(refresh, every);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
})();
