// The one-time link's secret travels in the URL fragment, which browsers never send to a
// server (nor in logs or Referer): it goes into the form, and out of the address bar.
(function () {
  var token = window.location.hash.slice(1);
  var field = document.getElementById("token");
  if (field && token) {
    field.value = token;
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
})();
