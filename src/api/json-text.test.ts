import { describe, expect, it } from "vitest";
import { loneSurrogateEscape, strictJsonText } from "./json-text.js";
import { quoted, sendableMessage, wellFormed } from "./error-text.js";

describe("loneSurrogateEscape", () => {
  it("finds a high or low surrogate escape without its other half, wherever it is", () => {
    expect(loneSurrogateEscape(String.raw`"\ud800"`)).toBe(1);
    expect(loneSurrogateEscape(String.raw`"ab\uDC00"`)).toBe(3);
    expect(loneSurrogateEscape(String.raw`"\ud800\u0041"`)).toBe(1);
    expect(loneSurrogateEscape(String.raw`"\udc00\ud800"`)).toBe(1);
    expect(loneSurrogateEscape(String.raw`"x\ud800`)).toBe(2); // cut off at the end of the text
  });

  it("passes pairs, other escapes and escaped backslashes", () => {
    expect(loneSurrogateEscape(String.raw`{"a":"\ud83d\ude00","b":"\n\"\u00e9"}`)).toBe(-1);
    expect(loneSurrogateEscape(String.raw`"\\ud800"`)).toBe(-1);
    expect(loneSurrogateEscape(String.raw`"\\\ud83d\ude00\\"`)).toBe(-1);
    expect(loneSurrogateEscape(String.raw`"\\\ud800"`)).toBe(3);
    expect(loneSurrogateEscape("no escapes at all")).toBe(-1);
  });
});

describe("strictJsonText", () => {
  it("refuses bytes that are not UTF-8 instead of replacing them", () => {
    expect(strictJsonText.decode(Buffer.from('"caf\u00e9"', "utf8"))).toBe('"caf\u00e9"');
    expect(() => strictJsonText.decode(Buffer.from([0x22, 0xe9, 0x22]))).toThrow("the request is not UTF-8 text");
  });
});

describe("error text", () => {
  it("quotes short values whole and cuts long ones, never leaving half a surrogate pair", () => {
    expect(quoted('a"b')).toBe('"a\\"b"');
    const long = `${"x".repeat(79)}\u{1F600}${"y".repeat(100)}`;
    expect(quoted(long)).toBe(`"${"x".repeat(79)}\uFFFD"… (181 characters)`);
  });

  it("makes any message well-formed and bounded", () => {
    expect(sendableMessage("bad \udc00 text")).toBe("bad \uFFFD text");
    expect(sendableMessage("m".repeat(5000))).toMatch(/^m{2000}… \(cut from 5000 characters\)$/);
  });
});

describe("strictJsonText and JSON syntax", () => {
  it("refuses text that is not JSON with a well-formed message, even where V8's would cut a surrogate pair", () => {
    let message = "";
    try {
      strictJsonText.decode(Buffer.from('\u{1F4A5}{"name":"x"}', "utf8"));
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^the request is not JSON: /);
    expect(message).toBe(wellFormed(message));
    expect(encodeURIComponent(message)).toBeTruthy(); // what connect-es does to it for the grpc-message trailer
  });
});
