// After an RP-initiated logout with a registered return address: go back to the school by
// itself once the front-channel frames have loaded (the schools' states stay readable for at
// least a second), at the latest after two seconds. The only address it goes to is the href of
// the page's #continue link (data-return="auto"), which the server set to the registered
// post_logout_redirect_uri with the school's state; without JavaScript that link stays.
(function () {
  var SHOWN_AT_LEAST = 1000;
  var AT_MOST = 2000;
  var started = Date.now();
  var loaded = 0;
  var gone = false;

  function go() {
    var link = document.getElementById("continue");
    if (gone || !link || link.getAttribute("data-return") !== "auto") return;
    gone = true;
    window.location.replace(link.href);
  }

  function check() {
    if (document.readyState === "loading") return;
    if (loaded >= document.querySelectorAll("iframe.frontchannel").length) {
      setTimeout(go, Math.max(0, SHOWN_AT_LEAST - (Date.now() - started)));
    }
  }

  function frameDone(event) {
    var target = event.target;
    if (target && target.classList && target.classList.contains("frontchannel")) {
      loaded += 1;
      check();
    }
  }

  // Load events do not bubble, but they can be caught on the way down: this listener, added
  // before the frames exist, sees every frame's load however fast it is.
  document.addEventListener("load", frameDone, true);
  document.addEventListener("error", frameDone, true);
  document.addEventListener("DOMContentLoaded", function () {
    setTimeout(go, AT_MOST);
    check();
  });
})();
