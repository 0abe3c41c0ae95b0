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
  // The inventory's "Add another person" adds a row in place (without JS the form is sent and
  // shown again with one more row and everything typed kept).
  var add = document.getElementById("add-person");
  var rows = document.getElementById("inventory-rows");
  if (add && rows) {
    add.addEventListener("click", function (event) {
      var people = document.querySelectorAll("#people fieldset.person");
      var last = people[people.length - 1];
      if (!last) { return; }
      event.preventDefault();
      var n = parseInt(rows.value, 10);
      var row = last.cloneNode(true);
      row.querySelector("legend").textContent = "Person " + (n + 1);
      row.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
      row.querySelectorAll("[id], [for], [name]").forEach(function (el) {
        ["id", "for", "name"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) { el.setAttribute(attr, value.replace(/^person-\d+-/, "person-" + n + "-")); }
        });
        el.removeAttribute("aria-invalid");
        el.removeAttribute("aria-describedby");
        if (el.type === "checkbox") { el.checked = false; }
        else if (el.tagName === "SELECT") { el.value = "2"; }
        else if (el.tagName === "INPUT") { el.value = ""; }
      });
      last.parentNode.appendChild(row);
      rows.value = String(n + 1);
      row.querySelector("input").focus();
    });
  }
});
