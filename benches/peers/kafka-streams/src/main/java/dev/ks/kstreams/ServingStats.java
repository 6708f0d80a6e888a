package dev.ks.kstreams;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;

/**
 * The serving statistics of one data type's current model (the tutorial's ModelToServeStats, in
 * ks-server's form: microseconds, a min that starts empty). Kept in the task's RocksDB store.
 */
final class ServingStats {
    private static final byte FORMAT = 1;

    final String name;
    final String description;
    final String modelType;
    /** {@code <partition>:<offset>} of the model message. */
    final String version;
    /** When the model started serving here, ms since the epoch. */
    final long since;
    long usage;
    /** Total scoring time, µs. */
    double duration;
    /** Fastest and slowest scoring, µs; NaN until the first record. */
    double min = Double.NaN;
    double max = Double.NaN;

    ServingStats(String name, String description, String modelType, String version, long since) {
        this.name = name;
        this.description = description;
        this.modelType = modelType;
        this.version = version;
        this.since = since;
    }

    void record(double micros) {
        usage++;
        duration += micros;
        min = Double.isNaN(min) ? micros : Math.min(min, micros);
        max = Double.isNaN(max) ? micros : Math.max(max, micros);
    }

    byte[] encode() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(128);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeByte(FORMAT);
            out.writeUTF(name);
            out.writeUTF(description);
            out.writeUTF(modelType);
            out.writeUTF(version);
            out.writeLong(since);
            out.writeLong(usage);
            out.writeDouble(duration);
            out.writeDouble(min);
            out.writeDouble(max);
        } catch (IOException e) {
            throw new IllegalStateException("writing to memory failed", e);
        }
        return bytes.toByteArray();
    }

    /** The statistics in {@code bytes}, or null if they are not in this format. */
    static ServingStats decode(byte[] bytes) {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
            if (in.readByte() != FORMAT) {
                return null;
            }
            ServingStats s = new ServingStats(in.readUTF(), in.readUTF(), in.readUTF(), in.readUTF(),
                    in.readLong());
            s.usage = in.readLong();
            s.duration = in.readDouble();
            s.min = in.readDouble();
            s.max = in.readDouble();
            return s;
        } catch (IOException e) {
            return null;
        }
    }

    /** As ks-server's /state/value answers it. */
    String toJson() {
        StringBuilder b = new StringBuilder(192).append("{\"name\":");
        Json.string(b, name).append(",\"description\":");
        Json.string(b, description).append(",\"model_type\":");
        Json.string(b, modelType).append(",\"version\":");
        Json.string(b, version).append(",\"since\":").append(since).append(",\"usage\":").append(usage)
                .append(",\"duration\":");
        Json.number(b, duration).append(",\"min\":");
        Json.number(b, Double.isNaN(min) ? null : min).append(",\"max\":");
        return Json.number(b, Double.isNaN(max) ? null : max).append('}').toString();
    }
}
