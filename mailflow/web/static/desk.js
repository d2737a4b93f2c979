// Small progressive enhancements; every page works without this file.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (box.matches && box.matches("[data-check-all]")) {
    document.querySelectorAll(`input[name="${box.dataset.checkAll}"]`).forEach((b) => { b.checked = box.checked; });
  }
});
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (button && button.classList.contains("btn-danger-ghost") && !window.confirm(`¿Confirma: ${button.textContent.trim()}?`)) {
    event.preventDefault();
  }
});
