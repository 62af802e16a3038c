// Checks the Salesforce source without an org: every Apex class and trigger parses with no syntax
// errors, every Apex file has its -meta.xml, every metadata file is well-formed XML, and the signer
// test still carries the shared REST vectors exactly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ApexErrorListener, ApexParserFactory } from "@apexdevtools/apex-parser";
import { XMLParser, XMLValidator } from "fast-xml-parser";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const forceApp = join(root, "force-app");
const vectorsFile = join(root, "..", "..", "tests", "fixtures", "apex-pusher-rest-vectors.json");
const MIN_API_VERSION = 60;

function filesUnder(directory) {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

class CollectingListener extends ApexErrorListener {
  errors = [];

  apexSyntaxError(line, column, message) {
    // ANTLR lists every token it expected; the start of the message is what a reader needs.
    const short = message.length > 160 ? `${message.slice(0, 160)}…` : message;
    this.errors.push(`${line}:${column} ${short}`);
  }
}

/** Syntax errors in Apex source, from both the lexer and the parser. */
function syntaxErrors(source, kind) {
  const listener = new CollectingListener();
  const { parser } = ApexParserFactory.createLexerAndParser(source, listener);
  if (kind === "trigger") {
    parser.triggerUnit();
  } else {
    parser.compilationUnit();
  }
  return listener.errors;
}

const files = filesUnder(forceApp).sort();
const apexFiles = files.filter((path) => path.endsWith(".cls") || path.endsWith(".trigger"));
const xmlFiles = files.filter((path) => path.endsWith(".xml"));
const name = (path) => relative(root, path);

test("the force-app tree has Apex and metadata to check", () => {
  assert.ok(apexFiles.length >= 10, `found only ${apexFiles.length} Apex files`);
  assert.ok(xmlFiles.length >= apexFiles.length, "every Apex file needs at least its -meta.xml");
});

test("the checker reports a broken class and a broken trigger", () => {
  assert.notDeepEqual(syntaxErrors("public class Broken { void f() { Integer x = ; } }", "class"), []);
  assert.notDeepEqual(syntaxErrors("public class Broken { String s = 'unterminated; }", "class"), []);
  assert.notDeepEqual(syntaxErrors("trigger T on Account (after insert) { if ( }", "trigger"), []);
  assert.deepEqual(syntaxErrors("public class Fine { String s = '\\u2026'; }", "class"), []);
});

for (const path of apexFiles) {
  test(`${name(path)} parses without syntax errors`, () => {
    const kind = path.endsWith(".trigger") ? "trigger" : "class";
    const errors = syntaxErrors(readFileSync(path, "utf8"), kind);
    assert.deepEqual(errors, [], `${name(path)}:\n  ${errors.join("\n  ")}`);
  });
}

test("every class and trigger has a -meta.xml with an API version of at least 60.0", () => {
  const parser = new XMLParser();
  for (const path of apexFiles) {
    const metaPath = `${path}-meta.xml`;
    assert.ok(existsSync(metaPath), `${name(path)} has no ${name(metaPath)}`);
    const meta = parser.parse(readFileSync(metaPath, "utf8"));
    const body = path.endsWith(".trigger") ? meta.ApexTrigger : meta.ApexClass;
    assert.ok(body, `${name(metaPath)} is not an ${path.endsWith(".trigger") ? "ApexTrigger" : "ApexClass"}`);
    assert.ok(Number(body.apiVersion) >= MIN_API_VERSION, `${name(metaPath)}: apiVersion ${body.apiVersion}`);
    assert.equal(body.status, "Active", `${name(metaPath)}: status`);
  }
});

for (const path of xmlFiles) {
  test(`${name(path)} is well-formed XML`, () => {
    const result = XMLValidator.validate(readFileSync(path, "utf8"));
    assert.equal(result, true, `${name(path)}: ${JSON.stringify(result.err ?? result)}`);
  });
}

test("sfdx-project.json points at force-app with API version 60.0 or later", () => {
  const project = JSON.parse(readFileSync(join(root, "sfdx-project.json"), "utf8"));
  assert.deepEqual(
    project.packageDirectories.map((directory) => directory.path),
    ["force-app"],
  );
  assert.ok(Number(project.sourceApiVersion) >= MIN_API_VERSION, `sourceApiVersion ${project.sourceApiVersion}`);
});

test("the permission set lists exactly the non-test classes", () => {
  const permissionSet = new XMLParser().parse(
    readFileSync(join(forceApp, "main", "default", "permissionsets", "Herald_Offers.permissionset-meta.xml"), "utf8"),
  ).PermissionSet;
  const granted = [permissionSet.classAccesses].flat().map((access) => access.apexClass).sort();
  const classes = apexFiles
    .filter((path) => path.endsWith(".cls"))
    .filter((path) => !/@isTest/i.test(readFileSync(path, "utf8").split("\n").slice(0, 8).join("\n")))
    .map((path) => path.split("/").pop().replace(/\.cls$/, ""))
    .sort();
  assert.deepEqual(granted, classes);
});

/** How a string is written as an Apex single-quoted literal. */
function apexLiteral(value) {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'").replaceAll("\n", "\\n")}'`;
}

test("HeraldSignerTest carries every shared REST vector exactly", (t) => {
  if (!existsSync(vectorsFile)) {
    t.skip(`${vectorsFile} not found (outside the Herald repository)`);
    return;
  }
  const { vectors } = JSON.parse(readFileSync(vectorsFile, "utf8"));
  const signerTest = readFileSync(join(forceApp, "main", "default", "classes", "HeraldSignerTest.cls"), "utf8");
  assert.ok(vectors.length >= 4);
  for (const vector of vectors) {
    for (const field of ["path", "body", "body_md5", "string_to_sign", "auth_signature", "key", "secret", "query_sent"]) {
      if (vector[field] === undefined) continue;
      assert.ok(
        signerTest.includes(apexLiteral(vector[field])),
        `${vector.name}: ${field} ${apexLiteral(vector[field])} is missing from HeraldSignerTest.cls`,
      );
    }
    assert.ok(signerTest.includes(`${vector.auth_timestamp}L`), `${vector.name}: auth_timestamp`);
  }
});
