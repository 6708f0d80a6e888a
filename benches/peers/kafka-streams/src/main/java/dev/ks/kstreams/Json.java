package dev.ks.kstreams;

/** The little JSON the peer writes: string escaping and numbers as serde_json prints them. */
final class Json {
    private Json() {
    }

    /** Appends {@code s} as a JSON string (quoted), or {@code null}. */
    static StringBuilder string(StringBuilder out, String s) {
        if (s == null) {
            return out.append("null");
        }
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"');
    }

    /** Appends a number; {@code null} for a missing or non-finite one (JSON has no NaN). */
    static StringBuilder number(StringBuilder out, Double d) {
        if (d == null || d.isNaN() || d.isInfinite()) {
            return out.append("null");
        }
        double v = d;
        // Whole numbers as 5.0 (serde_json's f64 form); others in Java's shortest repr, which JSON
        // accepts (1.0E-5 is a valid JSON number).
        return out.append(v);
    }

    /** Appends a model output: a number as a number, anything else as its text, null as null. */
    static StringBuilder value(StringBuilder out, Object v) {
        if (v == null) {
            return out.append("null");
        }
        if (v instanceof Number n) {
            return number(out, n.doubleValue());
        }
        return string(out, v.toString());
    }
}
