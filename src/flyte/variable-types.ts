// The bridge's variable types (pluginbridge.v1.VariableType) and the Flyte simple types that say the same, in one
// table for both directions: Flyte calling the bridge (serving/) and the bridge calling Flyte connectors (driving/).
import { SimpleType } from "@plugin-bridge/protocol/flyteidl/core/types_pb.js";
import { VariableType } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";

const SAME: ReadonlyArray<readonly [VariableType, SimpleType]> = [
  [VariableType.STRING, SimpleType.STRING],
  [VariableType.INTEGER, SimpleType.INTEGER],
  [VariableType.FLOAT, SimpleType.FLOAT],
  [VariableType.BOOLEAN, SimpleType.BOOLEAN],
  [VariableType.STRUCT, SimpleType.STRUCT],
];

/** The Flyte simple type of a bridge variable type; undefined for LIST (a collection) and UNSPECIFIED. */
export function simpleTypeOfVariable(type: VariableType): SimpleType | undefined {
  return SAME.find(([variable]) => variable === type)?.[1];
}

/** The bridge variable type of a Flyte simple type; UNSPECIFIED for those the bridge has none for (datetime, …). */
export function variableTypeOfSimple(type: SimpleType): VariableType {
  return SAME.find(([, simple]) => simple === type)?.[0] ?? VariableType.UNSPECIFIED;
}
