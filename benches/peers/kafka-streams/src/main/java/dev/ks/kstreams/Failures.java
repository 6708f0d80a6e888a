package dev.ks.kstreams;

import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;

/** Rejected models go to the errors topic as ks-server reports them: JSON and ks.* headers. */
final class Failures implements AutoCloseable {
    private final KafkaProducer<byte[], byte[]> producer;
    private final String topic;

    Failures(KafkaProducer<byte[], byte[]> producer, String topic) {
        this.producer = producer;
        this.topic = topic;
    }

    /** The ks.* headers naming an error and where the failed message came from. */
    static Headers headers(String reason, String topic, int partition, long offset) {
        return addHeaders(new RecordHeaders(), reason, topic, partition, offset);
    }

    /** Appends the ks.* headers to {@code h}. */
    static Headers addHeaders(Headers h, String reason, String topic, int partition, long offset) {
        h.add("ks.error", bytes(reason));
        h.add("ks.source.topic", bytes(topic));
        h.add("ks.source.partition", bytes(Integer.toString(partition)));
        h.add("ks.source.offset", bytes(Long.toString(offset)));
        return h;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    void modelFailed(ServedModel.Rejected r, String fromTopic, int partition, long offset) {
        StringBuilder json = new StringBuilder(256).append("{\"kind\":\"model\",\"dataType\":");
        Json.string(json, r.dataType).append(",\"name\":");
        Json.string(json, r.name).append(",\"error\":");
        Json.string(json, r.getMessage()).append(",\"topic\":");
        Json.string(json, fromTopic).append(",\"partition\":").append(partition).append(",\"offset\":")
                .append(offset).append('}');
        byte[] key = r.dataType.isEmpty() ? null : bytes(r.dataType);
        ProducerRecord<byte[], byte[]> record = new ProducerRecord<>(topic, null, key, bytes(json.toString()),
                headers(r.getMessage(), fromTopic, partition, offset));
        producer.send(record, (meta, e) -> {
            if (e != null) {
                System.err.println("ks-kstreams-peer: cannot report the rejected model " + r.name + ": " + e);
            }
        });
        System.err.println("ks-kstreams-peer: rejected a model of " + fromTopic + "[" + partition + "]@" + offset
                + ": " + r.getMessage());
    }

    @Override
    public void close() {
        producer.close();
    }
}
