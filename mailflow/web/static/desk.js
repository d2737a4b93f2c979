// Small progressive enhancements; every page works without this file.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (box.matches && box.matches("[data-check-all]")) {
    document.querySelectorAll(`input[name="${box.dataset.checkAll}"]`).forEach((b) => { b.checked = box.checked; });
  }
});
// Deliberate actions: a button that issues, sends or rejects says what it does and asks first.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (!button) {  // implicit submission (Enter) of an action form: never an action
    if (event.target.querySelector(".default-off")) event.preventDefault();
    return;
  }
  const text = button.dataset.confirm || (button.classList.contains("btn-danger-ghost") ? `${button.textContent.trim()}.` : "");
  if (text && !window.confirm(`${text}\n\n¿Confirma?`)) {
    event.preventDefault();
  }
});
// Enter in a one-line field of an action form does nothing (forms marked by .default-off).
document.addEventListener("keydown", (event) => {
  const field = event.target;
  if (event.key === "Enter" && field.matches && field.matches("input") && field.form && field.form.querySelector(".default-off")) {
    event.preventDefault();
  }
});
// Queue items: load the message text when the item is expanded.
document.addEventListener("toggle", (event) => {
  const box = event.target;
  if (!box.matches || !box.matches("details[data-src]") || !box.open || box.dataset.loaded) return;
  box.dataset.loaded = "1";
  fetch(box.dataset.src, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
    .then((html) => { box.querySelector(".peek-body").innerHTML = html; })
    .catch(() => { box.dataset.loaded = ""; });
}, true);
