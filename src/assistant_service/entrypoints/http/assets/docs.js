// Renders /openapi.json as a page: operations, parameters, bodies, responses, schemas.
// Built with DOM calls only (textContent), so nothing in the document runs as HTML.
"use strict";

(function () {
  const main = document.getElementById("docs");
  const status = document.getElementById("docs-status");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function refName(schema) {
    return schema && schema.$ref ? schema.$ref.split("/").pop() : null;
  }

  function schemaLink(schema) {
    const name = refName(schema);
    if (name) return el("a", { href: "#schema-" + name, text: name });
    return el("code", { text: JSON.stringify(schema) });
  }

  function content(map) {
    const list = el("ul", { class: "content" });
    for (const [type, media] of Object.entries(map || {})) {
      const item = el("li", {}, el("code", { text: type }), " ");
      if (media.schema) item.append(schemaLink(media.schema));
      if (media["x-item-schema"]) item.append(" of ", schemaLink(media["x-item-schema"]));
      if (media.schema && media.schema.description) item.append(el("p", { text: media.schema.description }));
      list.append(item);
    }
    return list;
  }

  function operation(path, method, op) {
    const id = "op-" + (op.operationId || method + path);
    const section = el("section", { class: "operation", id: id, "aria-labelledby": id + "-h" });
    section.append(el("h3", { id: id + "-h" },
      el("span", { class: "method method-" + method, text: method.toUpperCase() }), " ",
      el("code", { text: path }), " ", el("span", { text: op.summary || "" })));
    if (op.description) section.append(el("p", { class: "prose", text: op.description }));
    if (op.parameters && op.parameters.length) {
      const table = el("table", {}, el("caption", { text: "Parameters" }),
        el("tr", {}, el("th", { text: "name" }), el("th", { text: "in" }),
          el("th", { text: "schema" }), el("th", { text: "" })));
      for (const p of op.parameters) {
        table.append(el("tr", {}, el("td", {}, el("code", { text: p.name + (p.required ? " *" : "") })),
          el("td", { text: p.in }), el("td", {}, el("code", { text: JSON.stringify(p.schema) })),
          el("td", { text: p.description || "" })));
      }
      section.append(table);
    }
    if (op.requestBody) section.append(el("h4", { text: "Body" }), content(op.requestBody.content));
    const responses = el("dl", { class: "responses" });
    for (const [code, answer] of Object.entries(op.responses || {})) {
      responses.append(el("dt", { text: code }),
        el("dd", {}, el("span", { text: answer.description || "" }), content(answer.content)));
    }
    section.append(el("h4", { text: "Responses" }), responses);
    return section;
  }

  function render(doc) {
    main.replaceChildren();
    main.append(el("p", { class: "prose", text: doc.info.description || "" }));
    const toc = el("ul", { class: "toc" });
    main.append(el("h2", { text: "Operations" }), toc);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const section = operation(path, method, op);
        toc.append(el("li", {}, el("a", { href: "#" + section.id, text: method.toUpperCase() + " " + path })));
        main.append(section);
      }
    }
    main.append(el("h2", { text: "Schemas" }));
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      main.append(el("section", { class: "schema", id: "schema-" + name },
        el("h3", { text: name }), el("pre", { text: JSON.stringify(schema, null, 2) })));
    }
    main.setAttribute("aria-busy", "false");
  }

  fetch("/openapi.json", { headers: { Accept: "application/json" } })
    .then((response) => {
      if (!response.ok) throw new Error("GET /openapi.json answered " + response.status);
      return response.json();
    })
    .then(render)
    .catch((error) => {
      status.textContent = "Could not load the document: " + error.message;
      status.setAttribute("role", "alert");
    });
})();
