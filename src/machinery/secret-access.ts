// Which plugin may receive which secret: the operator's rules (setting `secretAccess`). A template may only name
// secrets its plugin is allowed; a plugin gets nothing else. Without rules no plugin gets any secret: a secret
// source alone never hands its whole content to whatever plugin asks.
//
// Format: rules separated by ';', each `<plugin>=<group>/<key>,<group>/<key>…`; `*` stands for any plugin, any
// group or any key (a whole segment only). Example: `sql=db/password,db/user;http=api/*;*=shared/ca`.

const SEGMENT = /^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,252})$/;
const PLUGIN = /^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,127})$/;

interface Rule {
  plugin: string;
  group: string;
  key: string;
}

/** A rule that cannot be read: says which and why. */
export class SecretAccessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretAccessError";
  }
}

export class SecretAccess {
  private constructor(private readonly rules: readonly Rule[]) {}

  /** Parses the setting; throws SecretAccessError naming the rule at fault. */
  static parse(text: string): SecretAccess {
    const rules: Rule[] = [];
    for (const [index, raw] of text.split(";").entries()) {
      const rule = raw.trim();
      if (rule === "") continue;
      const equals = rule.indexOf("=");
      if (equals < 0) throw new SecretAccessError(`rule ${index + 1} ("${rule}") has no "=": write <plugin>=<group>/<key>,…`);
      const plugin = rule.slice(0, equals).trim();
      if (!PLUGIN.test(plugin)) throw new SecretAccessError(`rule ${index + 1}: "${plugin}" is not a plugin name or *`);
      for (const item of rule.slice(equals + 1).split(",")) {
        const [group, key, extra] = item.trim().split("/");
        if (extra !== undefined || !group || !key || !SEGMENT.test(group) || !SEGMENT.test(key)) {
          throw new SecretAccessError(`rule ${index + 1}: "${item.trim()}" is not <group>/<key> (each a name or *)`);
        }
        rules.push({ plugin, group, key });
      }
    }
    return new SecretAccess(rules);
  }

  /** Whether `plugin` may receive the secret `group/key`. */
  allows(plugin: string, group: string, key: string): boolean {
    const matches = (pattern: string, value: string): boolean => pattern === "*" || pattern === value;
    return this.rules.some((rule) => matches(rule.plugin, plugin) && matches(rule.group, group) && matches(rule.key, key));
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }
}
