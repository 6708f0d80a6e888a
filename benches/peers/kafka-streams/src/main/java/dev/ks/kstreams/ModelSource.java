package dev.ks.kstreams;

import java.nio.charset.StandardCharsets;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The processor of the global models store: every instance reads every model message, builds the
 * model (JPMML) and installs it for its data type; the descriptor goes into the global store by
 * data type. A model that does not build is reported to the errors topic and the previous one
 * keeps serving.
 */
final class ModelSource implements Processor<byte[], byte[], Void, Void> {
    static final String MODELS_STORE = "models";

    private final Registry registry;
    private final Failures failures;
    private ProcessorContext<Void, Void> context;
    private KeyValueStore<byte[], byte[]> store;

    ModelSource(Registry registry, Failures failures) {
        this.registry = registry;
        this.failures = failures;
    }

    @Override
    public void init(ProcessorContext<Void, Void> context) {
        this.context = context;
        this.store = context.getStateStore(MODELS_STORE);
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
        byte[] payload = record.value();
        if (payload == null) {
            return; // a tombstone: nothing to build
        }
        RecordMetadata m = context.recordMetadata().orElse(null);
        String topic = m == null ? "" : m.topic();
        int partition = m == null ? -1 : m.partition();
        long offset = m == null ? -1 : m.offset();
        ServedModel model;
        long started = System.nanoTime();
        try {
            model = ServedModel.build(payload, partition + ":" + offset);
        } catch (ServedModel.Rejected r) {
            failures.modelFailed(r, topic, partition, offset);
            return;
        }
        System.err.printf("ks-kstreams-peer: built model %s of %s (%s[%d]@%d) in %.1f ms%n", model.name,
                model.dataType, topic, partition, offset, (System.nanoTime() - started) / 1e6);
        store.put(model.dataType.getBytes(StandardCharsets.UTF_8), payload);
        registry.firstSight(model.dataType, payload);
        registry.install(model);
    }
}
