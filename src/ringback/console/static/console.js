// The console's few behaviours beyond htmx: the upload's progress bar, and error answers
// (4xx) shown in place instead of being dropped.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status >= 400 && status < 500) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
document.addEventListener("htmx:xhr:progress", function (event) {
  var bar = document.getElementById("upload-progress");
  if (!bar || !event.detail.lengthComputable) return;
  bar.hidden = false;
  bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
});
document.addEventListener("htmx:afterRequest", function (event) {
  var bar = document.getElementById("upload-progress");
  if (bar && event.detail.elt && event.detail.elt.id === "upload") {
    bar.value = 100;
  }
});
// A form with data-confirm asks first (without JavaScript it is sent at once).
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
