/* Settings: "Subscribe this browser as a test device". Registers the dashboard's copy of the
   shop's service worker (scope /admin/), subscribes with the shop's VAPID key and posts the
   subscription with the name given; the page reloads to list it. Says plainly what went wrong
   (notifications blocked, no push service in this browser) instead of failing silently. */
(function () {
  "use strict";

  var box = document.getElementById("add-device");
  var button = document.getElementById("subscribe-device");
  var state = document.getElementById("device-state");
  if (!box || !button) {
    return;
  }

  function say(text) {
    state.textContent = text;
  }

  function keyBytes(base64url) {
    var padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "==".slice(0, (4 - base64url.length % 4) % 4);
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes;
  }

  function subscribe() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      return Promise.reject(new Error("This browser cannot receive push notifications."));
    }
    return Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") {
        throw new Error("Notifications are blocked for this dashboard: allow them in the browser's site settings.");
      }
      return navigator.serviceWorker.register(box.dataset.worker, {scope: box.dataset.scope});
    }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      return registration.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: keyBytes(box.dataset.key)});
    });
  }

  button.addEventListener("click", function () {
    var name = document.getElementById("device-name").value.trim();
    if (!name) {
      say("Give this browser a name first.");
      return;
    }
    button.disabled = true;
    say("Subscribing…");
    subscribe().then(function (subscription) {
      return fetch(box.dataset.post, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json",
                  "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content},
        body: JSON.stringify({name: name, subscription: subscription.toJSON(), application_server_key: box.dataset.key})
      });
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          throw new Error((body.error && body.error.message) || "The dashboard refused the subscription.");
        }
        window.location.reload();
      });
    }).catch(function (error) {
      say("Not subscribed: " + (error && error.message ? error.message : error));
      button.disabled = false;
    });
  });
}());
