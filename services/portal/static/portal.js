// Small progressive enhancements; every page works without JavaScript.
document.addEventListener("DOMContentLoaded", function () {
  // Diary and filter selects: show the result as soon as a choice is made.
  document.querySelectorAll("form.toolbar select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });
  // Ask before cancelling a session (a deliberate, logged act).
  document.querySelectorAll("button.danger").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm("Cancel this session?")) { event.preventDefault(); }
    });
  });
});
