// Live updates: a new item (server-sent events) swaps in the fresh list and is announced to
// screen readers. Without JavaScript the page works the same, by reloading.
(function () {
  "use strict";
  var box = document.getElementById("items");
  var live = document.getElementById("live");
  if (!box || !window.EventSource) return;
  var refreshing = false;
  function refresh(label) {
    if (refreshing) return;
    refreshing = true;
    fetch(box.dataset.fragment, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var focused = document.activeElement && document.activeElement.closest("form");
        if (!focused) box.innerHTML = html;  // never pull a form out from under the user
        live.textContent = label;
      })
      .catch(function () {})
      .then(function () { refreshing = false; });
  }
  var source = new EventSource(box.dataset.stream);
  source.addEventListener("item", function (event) {
    var item = {};
    try { item = JSON.parse(event.data); } catch (e) {}
    refresh(item.type === "mutual"
      ? "You and " + item.other_person_id + " both said yes."
      : "New suggestion: " + (item.other_person_id || "someone") + ".");
  });
})();
