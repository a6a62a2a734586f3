// @ts-check
/**
 * online.js: on a narrow screen (a phone) a room's side column (who is
 * online, the members) is a drawer opened by the "Online" button in the
 * room's head, instead of a column pushed below the chat. Escape, the
 * drawer's "Close" button or a click outside it close it again. On wider
 * screens the button is hidden by the stylesheet and the column shows as is.
 * @module online
 */

const toggle = /** @type {HTMLButtonElement|null} */ (document.querySelector("[data-online-toggle]"));
const side = toggle ? document.getElementById(toggle.getAttribute("aria-controls") || "") : null;

if (toggle && side) setUp(toggle, side);

/**
 * @param {HTMLButtonElement} toggle
 * @param {HTMLElement} side
 */
function setUp(toggle, side) {
  const close = document.createElement("button");
  close.type = "button";
  close.className = "secondary drawer-close";
  close.textContent = "Close";
  side.prepend(close);

  /** @param {boolean} open */
  function show(open) {
    side.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", String(open));
    if (open) close.focus();
  }

  // The count beside "Online", from the presence heading the room keeps up to date.
  const count = document.querySelector("[data-presence-count]");
  if (count) {
    const label = () => {
      toggle.textContent = `Online ${count.textContent || ""}`.trim();
    };
    new MutationObserver(label).observe(count, { childList: true, characterData: true, subtree: true });
    label();
  }

  toggle.addEventListener("click", (event) => {
    event.stopPropagation();
    show(!side.classList.contains("open"));
  });
  close.addEventListener("click", () => {
    show(false);
    toggle.focus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && side.classList.contains("open")) {
      show(false);
      toggle.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (side.classList.contains("open") && !side.contains(/** @type {Node} */ (event.target))) show(false);
  });
}
