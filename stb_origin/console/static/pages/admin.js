// Admins: users and packages, listed and created.

import { api } from "../api.js";
import { field, h, replace, say, when } from "../dom.js";

export const title = "Users and packages";

export async function render(main) {
  const users = h("tbody");
  const packages = h("tbody");

  async function load() {
    const [u, p] = await Promise.all([api("/v1/users?limit=100"), api("/v1/packages?limit=100")]);
    replace(users, u.items.map((x) => h("tr", {}, h("td", {}, x.email), h("td", {}, x.role),
                                       h("td", {}, when(x.created_at)))));
    replace(packages, p.items.map((x) => h("tr", {}, h("td", {}, x.name),
                                          h("td", {}, x.description || ""))));
  }

  const email = h("input", { type: "email", required: true, autocomplete: "off" });
  const role = h("select", {}, ["editor", "admin", "subscriber"].map(
    (r) => h("option", { value: r }, r)));
  const password = h("input", { type: "password", required: true, minlength: 12,
                                autocomplete: "new-password" });
  const userForm = h("form", { class: "card" }, h("h2", {}, "New user"),
                     ...field("Email", email), ...field("Role", role),
                     ...field("Password", password), h("button", { type: "submit" }, "Create"));
  userForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    await api("/v1/users", { method: "POST",
      json: { email: email.value, role: role.value, password: password.value } });
    say(`Created ${email.value}.`);
    userForm.reset();
    load();
  });
  const name = h("input", { type: "text", required: true, pattern: "[a-z0-9][a-z0-9-]*" });
  const packageForm = h("form", { class: "card" }, h("h2", {}, "New package"),
                        ...field("Name (lowercase letters, digits, -)", name),
                        h("button", { type: "submit" }, "Create"));
  packageForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    await api("/v1/packages", { method: "POST", json: { name: name.value } });
    say(`Created package ${name.value}.`);
    packageForm.reset();
    load();
  });
  const table = (headings, body) => h("table", {}, h("thead", {}, h("tr", {},
    headings.map((t) => h("th", { scope: "col" }, t)))), body);
  replace(main, h("h1", {}, "Users and packages"),
          h("div", { class: "grid" },
            h("section", {}, h("h2", {}, "Users"), h("div", { class: "card" },
              table(["Email", "Role", "Created"], users)), userForm),
            h("section", {}, h("h2", {}, "Packages"), h("div", { class: "card" },
              table(["Name", "Description"], packages)), packageForm)));
  await load();
}
