package dev.ks.kstreams;

import com.google.protobuf.InvalidProtocolBufferException;
import com.lightbend.model.Winerecord.WineRecord;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The data processor (one per task): decode a WineRecord, swap in its data type's newest model if
 * the task is not serving it yet, score, keep the serving statistics, emit a result.
 *
 * <p>As ks-server: statistics are updated in memory per record and written to the task's RocksDB
 * store (changelogged) each second of wall-clock time and at once on a model swap. A record that
 * cannot be decoded or scored is forwarded as it came with ks.* headers; the sink routes those to
 * the errors topic.
 */
final class ModelServing implements Processor<byte[], byte[], byte[], byte[]> {
    static final String SERVING_STORE = "serving";

    private static final class Serving {
        ServingStats stats;
        boolean dirty;
    }

    private final Registry registry;
    private final Map<String, Serving> states = new HashMap<>();
    private ProcessorContext<byte[], byte[]> context;
    private KeyValueStore<String, byte[]> store;
    private KeyValueStore<byte[], byte[]> models;

    ModelServing(Registry registry) {
        this.registry = registry;
    }

    @Override
    public void init(ProcessorContext<byte[], byte[]> context) {
        this.context = context;
        this.store = context.getStateStore(SERVING_STORE);
        this.models = context.getStateStore(ModelSource.MODELS_STORE);
        context.schedule(Duration.ofSeconds(1), PunctuationType.WALL_CLOCK_TIME, ts -> writeStats());
    }

    /**
     * The current model of {@code dataType}. A descriptor the global store holds but the registry
     * lacks (restored at start without passing through {@link ModelSource}) is built here, once.
     */
    private ServedModel model(String dataType) {
        ServedModel m = registry.get(dataType);
        if (m != null) {
            return m;
        }
        byte[] stored = models.get(dataType.getBytes(StandardCharsets.UTF_8));
        if (stored != null && registry.firstSight(dataType, stored)) {
            try {
                m = ServedModel.build(stored, "restored");
                registry.install(m);
            } catch (ServedModel.Rejected r) {
                System.err.println("ks-kstreams-peer: the stored model of " + dataType + " does not build: "
                        + r.getMessage());
            }
        }
        return m;
    }

    private Serving serving(String dataType) {
        Serving s = states.get(dataType);
        if (s == null) {
            s = new Serving();
            byte[] bytes = store.get(dataType);
            if (bytes != null) {
                s.stats = ServingStats.decode(bytes);
                if (s.stats == null) {
                    System.err.println("ks-kstreams-peer: discarding unreadable serving statistics of " + dataType);
                }
            }
            states.put(dataType, s);
        }
        return s;
    }

    private void writeStats() {
        for (Map.Entry<String, Serving> e : states.entrySet()) {
            Serving s = e.getValue();
            if (s.dirty && s.stats != null) {
                store.put(e.getKey(), s.stats.encode());
            }
            s.dirty = false;
        }
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
        RecordMetadata meta = context.recordMetadata().orElse(null);
        String topic = meta == null ? "" : meta.topic();
        int partition = meta == null ? -1 : meta.partition();
        long offset = meta == null ? -1 : meta.offset();
        byte[] bytes = record.value();
        if (bytes == null) {
            deadLetter(record, "an empty data record", topic, partition, offset);
            return;
        }
        WineRecord wine;
        try {
            wine = WineRecord.parseFrom(bytes);
        } catch (InvalidProtocolBufferException e) {
            deadLetter(record, "not a WineRecord: " + e.getMessage(), topic, partition, offset);
            return;
        }
        String dataType = wine.getDataType();
        if (dataType.isEmpty()) {
            deadLetter(record, "the record has no dataType", topic, partition, offset);
            return;
        }
        StringBuilder json = new StringBuilder(256).append("{\"dataType\":");
        Json.string(json, dataType);
        ServedModel m = model(dataType);
        if (m == null) {
            json.append(",\"model\":null,\"model_version\":null,\"prediction\":null,\"duration_us\":null");
        } else {
            Serving serving = serving(dataType);
            boolean swapped = serving.stats == null || !serving.stats.version.equals(m.version);
            if (swapped) {
                serving.stats = new ServingStats(m.name, m.description, m.modelType, m.version,
                        System.currentTimeMillis());
            }
            ServedModel.Prediction p;
            long started = System.nanoTime();
            try {
                p = m.score(wine);
            } catch (RuntimeException e) {
                deadLetter(record, "model " + m.name + " cannot score this record: " + e, topic, partition, offset);
                return;
            }
            double micros = (System.nanoTime() - started) / 1000.0;
            serving.stats.record(micros);
            serving.dirty = true;
            json.append(",\"model\":");
            Json.string(json, m.name).append(",\"model_version\":");
            Json.string(json, m.version).append(",\"prediction\":");
            Json.value(json, p.value());
            if (!p.probabilities().isEmpty()) {
                json.append(",\"probabilities\":{");
                boolean first = true;
                for (Map.Entry<String, Double> e : p.probabilities().entrySet()) {
                    if (!first) {
                        json.append(',');
                    }
                    first = false;
                    Json.string(json, e.getKey()).append(':');
                    Json.number(json, e.getValue());
                }
                json.append('}');
            }
            json.append(",\"duration_us\":");
            Json.number(json, micros);
            if (swapped) {
                // Queries see the new model at once, not at the next punctuation.
                writeStats();
            }
        }
        json.append(",\"topic\":");
        Json.string(json, topic).append(",\"partition\":").append(partition).append(",\"offset\":").append(offset);
        if (m == null) {
            json.append(",\"error\":\"no model\"");
        }
        json.append('}');
        context.forward(new Record<>(dataType.getBytes(StandardCharsets.UTF_8),
                json.toString().getBytes(StandardCharsets.UTF_8), record.timestamp()));
    }

    /** The record as it came, with headers naming the error: the sink sends it to the errors topic. */
    private void deadLetter(Record<byte[], byte[]> record, String reason, String topic, int partition, long offset) {
        Headers headers = Failures.addHeaders(new RecordHeaders(record.headers().toArray()), reason, topic,
                partition, offset);
        context.forward(new Record<>(record.key(), record.value(), record.timestamp(), headers));
    }

    /** Where the sink sends a record: the errors topic for a dead letter, else the results topic. */
    static String route(Headers headers, String results, String errors) {
        return headers.lastHeader("ks.error") != null ? errors : results;
    }
}
