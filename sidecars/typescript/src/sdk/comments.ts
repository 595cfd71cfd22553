// The leading comments of a message, field, enum or enum value, read from its file's SourceCodeInfo. A plugin's
// descriptor set carries that only when whoever built it kept it (generated code usually strips it), so every
// lookup may come back empty.
import type { DescEnum, DescEnumValue, DescField, DescFile, DescMessage } from "@bufbuild/protobuf";

type Commented = DescMessage | DescField | DescEnum | DescEnumValue;

// Field numbers in descriptor.proto that SourceCodeInfo paths are made of.
const FILE_MESSAGE_TYPE = 4;
const FILE_ENUM_TYPE = 5;
const MESSAGE_FIELD = 2;
const MESSAGE_NESTED_TYPE = 3;
const MESSAGE_ENUM_TYPE = 4;
const ENUM_VALUE = 2;

const byFile = new WeakMap<DescFile, Map<string, string>>();

/** The element's leading comment lines, without the comment markers; empty when there are none. */
export function leadingComments(element: Commented): string[] {
  const text = commentsOf(fileOf(element)).get(pathOf(element).join(","));
  if (!text) return [];
  const lines = text.replace(/\n$/, "").split("\n");
  // protoc keeps what followed "//", usually one space.
  return lines.map((line) => line.replace(/^ /, "").trimEnd());
}

function fileOf(element: Commented): DescFile {
  switch (element.kind) {
    case "field":
      return element.parent.file;
    case "enum_value":
      return element.parent.file;
    default:
      return element.file;
  }
}

function commentsOf(file: DescFile): Map<string, string> {
  let comments = byFile.get(file);
  if (!comments) {
    comments = new Map();
    for (const location of file.proto.sourceCodeInfo?.location ?? []) {
      if (location.leadingComments) comments.set(location.path.join(","), location.leadingComments);
    }
    byFile.set(file, comments);
  }
  return comments;
}

/** The element's SourceCodeInfo path: field numbers and indexes from the file down to it. */
function pathOf(element: Commented): number[] {
  switch (element.kind) {
    case "message":
      return element.parent
        ? [...pathOf(element.parent), MESSAGE_NESTED_TYPE, element.parent.proto.nestedType.indexOf(element.proto)]
        : [FILE_MESSAGE_TYPE, element.file.proto.messageType.indexOf(element.proto)];
    case "field":
      return [...pathOf(element.parent), MESSAGE_FIELD, element.parent.proto.field.indexOf(element.proto)];
    case "enum":
      return element.parent
        ? [...pathOf(element.parent), MESSAGE_ENUM_TYPE, element.parent.proto.enumType.indexOf(element.proto)]
        : [FILE_ENUM_TYPE, element.file.proto.enumType.indexOf(element.proto)];
    case "enum_value":
      return [...pathOf(element.parent), ENUM_VALUE, element.parent.proto.value.indexOf(element.proto)];
  }
}
