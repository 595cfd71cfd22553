// A Plugin Specification written out for people who fill `template.custom` by hand: the message and every message
// and enum it uses, in a proto-like layout whose field names are the JSON names `custom` is keyed by, with the
// JSON form of well-known types spelled out and the descriptors' comments where the descriptor set kept them.
import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { leadingComments } from "./comments.js";
import type { TaskSpecification } from "./specifications.js";

/** A task type's specification, for programs (`message`) and for people (`text`). */
export interface TaskSchema extends TaskSpecification {
  /** The specification as readable text; says so when the plugin declares none. */
  readonly text: string;
}

export function taskSchema(spec: TaskSpecification): TaskSchema {
  return { ...spec, text: schemaText(spec) };
}

function schemaText(spec: TaskSpecification): string {
  const subject = `template.custom of task type "${spec.type}" version ${spec.version} (plugin "${spec.plugin.name}" ${spec.plugin.version})`;
  if (!spec.message) return `${subject}: the plugin declares no specification, so any JSON object passes.\n`;
  const header =
    `${subject} is the proto3 JSON of ${spec.message.typeName}.\n` +
    "Keys are the JSON names below (proto names are accepted too); unknown keys are refused.\n";
  return [header, ...blocks(spec.message)].join("\n");
}

/** One block per message or enum the specification uses, itself first, each once. */
function blocks(root: DescMessage): string[] {
  const written = new Set<string>();
  const queue: (DescMessage | DescEnum)[] = [root];
  const out: string[] = [];
  for (let next = queue.shift(); next; next = queue.shift()) {
    if (written.has(next.typeName)) continue;
    written.add(next.typeName);
    if (next.kind === "enum") {
      out.push(enumBlock(next));
      continue;
    }
    out.push(messageBlock(next));
    for (const field of next.fields) {
      const used = field.message ?? field.enum;
      // Well-known types are described by their JSON form where they are used, not field by field.
      if (used && !isWellKnown(used.typeName)) queue.push(used);
    }
  }
  return out;
}

function messageBlock(message: DescMessage): string {
  const lines = [...commentLines(leadingComments(message), ""), `message ${message.typeName} {`];
  for (const member of message.members) {
    if (member.kind === "field") {
      lines.push(...fieldLines(member, "  "));
      continue;
    }
    lines.push(`  oneof ${member.name} {  // at most one of these`);
    for (const field of member.fields) lines.push(...fieldLines(field, "    "));
    lines.push("  }");
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

function enumBlock(desc: DescEnum): string {
  const lines = [...commentLines(leadingComments(desc), ""), `enum ${desc.typeName} {  // JSON: a value's name or number`];
  for (const value of desc.values) {
    lines.push(...commentLines(leadingComments(value), "  "), `  ${value.name} = ${value.number}`);
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

function fieldLines(field: DescField, indent: string): string[] {
  const form = jsonForm(field);
  const each = field.fieldKind === "list" ? "each " : field.fieldKind === "map" ? "each value " : "";
  const line = `${indent}${field.jsonName}: ${typeText(field)}${form ? `  (JSON: ${each}${form})` : ""}`;
  return [...commentLines(leadingComments(field), indent), line];
}

function commentLines(comments: string[], indent: string): string[] {
  return comments.map((line) => `${indent}//${line ? ` ${line}` : ""}`);
}

function typeText(field: DescField): string {
  switch (field.fieldKind) {
    case "scalar":
      return `${field.proto.proto3Optional ? "optional " : ""}${scalarName(field.scalar)}`;
    case "enum":
      return `${field.proto.proto3Optional ? "optional " : ""}${field.enum.typeName}`;
    case "message":
      return field.message.typeName;
    case "list":
      return `repeated ${itemType(field.listKind === "scalar" ? field.scalar : (field.message ?? field.enum))}`;
    case "map":
      return `map<${scalarName(field.mapKey)}, ${itemType(field.mapKind === "scalar" ? field.scalar : (field.message ?? field.enum))}>`;
  }
}

/** The type of a list's items or a map's values. */
function itemType(item: ScalarType | DescMessage | DescEnum): string {
  return typeof item === "number" ? scalarName(item) : item.typeName;
}

function scalarName(scalar: ScalarType): string {
  return ScalarType[scalar].toLowerCase();
}

const isWellKnown = (typeName: string): boolean => typeName.startsWith("google.protobuf.");

const WELL_KNOWN_JSON: Record<string, string> = {
  "google.protobuf.Duration": 'a string such as "1.5s"',
  "google.protobuf.Timestamp": 'an RFC 3339 string such as "2024-05-01T12:00:00Z"',
  "google.protobuf.Struct": "any JSON object",
  "google.protobuf.Value": "any JSON value",
  "google.protobuf.ListValue": "any JSON array",
  "google.protobuf.FieldMask": 'a string of comma-separated field paths such as "a,b.c"',
  "google.protobuf.Any": 'an object with "@type" and the fields of that message',
  "google.protobuf.Empty": "{}",
  "google.protobuf.NullValue": "null",
};

/** What proto3 JSON expects where it is not what the type's name suggests; undefined when it is. */
function jsonForm(field: DescField): string | undefined {
  const typeName = field.message?.typeName ?? field.enum?.typeName;
  if (typeName) {
    if (!isWellKnown(typeName)) return undefined;
    const wrapped = field.message?.fields.find((inner) => inner.name === "value" && inner.fieldKind === "scalar");
    // The wrappers (Int32Value, StringValue, …) are their one value, or null.
    if (!WELL_KNOWN_JSON[typeName] && wrapped?.scalar !== undefined) return `${scalarName(wrapped.scalar)} or null`;
    return WELL_KNOWN_JSON[typeName];
  }
  switch (field.scalar) {
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return "a number or a decimal string";
    case ScalarType.BYTES:
      return "a base64 string";
    default:
      return undefined;
  }
}
