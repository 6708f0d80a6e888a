package dev.ks.kstreams;

import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.Stores;

/**
 * ks-kstreams-peer: the tutorial's model server on Apache Kafka Streams, the peer ks-bench
 * measures ks-server against. The topology is ks-server --store standard's, in the DSL:
 *
 * <pre>
 *   global store "models" (in memory) &lt;- models topic: decode ModelDescriptor, build (JPMML), install
 *   data topic -> process(ModelServing, store "serving" (RocksDB, changelogged)) -> results | errors
 * </pre>
 *
 * <p>Prints "ks-kstreams-peer (standard) running: ..." on stdout once started (the global store
 * bootstrapped: a model published now is seen). SIGTERM closes it cleanly.
 */
public final class Main {
    private Main() {
    }

    static Properties config(Options o) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, o.applicationId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, o.brokers);
        p.put(StreamsConfig.STATE_DIR_CONFIG, o.stateDir);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, o.threads);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
                o.guarantee.equals("exactly_once") ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), (int) o.sessionTimeoutMs);
        if (o.commitIntervalMs != null) {
            p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, o.commitIntervalMs);
        }
        p.putAll(o.extra);
        return p;
    }

    static Topology topology(Options o, Registry registry, Failures failures) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.addStateStore(Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(ModelServing.SERVING_STORE), Serdes.String(), Serdes.ByteArray()));
        // Global stores are restored from their source topic and never changelogged.
        builder.addGlobalStore(
                Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore(ModelSource.MODELS_STORE),
                        Serdes.ByteArray(), Serdes.ByteArray()).withLoggingDisabled(),
                o.modelsTopic,
                Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()).withName("models-source"),
                () -> new ModelSource(registry, failures));
        String results = o.resultsTopic;
        String errors = o.errorsTopic;
        builder.stream(o.dataTopic, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()).withName("data"))
                .process(() -> new ModelServing(registry), Named.as("serving"), ModelServing.SERVING_STORE)
                .to((key, value, ctx) -> ModelServing.route(ctx.headers(), results, errors),
                        Produced.with(Serdes.ByteArray(), Serdes.ByteArray()).withName("results"));
        return builder.build();
    }

    private static KafkaProducer<byte[], byte[]> errorsProducer(Options o) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, o.brokers);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, o.applicationId + "-errors");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    public static void main(String[] args) {
        // Kafka logs much at INFO; warnings and errors are what a benchmark log needs.
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        Options o;
        try {
            o = Options.parse(args);
        } catch (Options.BadArgs e) {
            if (!e.getMessage().isEmpty()) {
                System.err.println("ks-kstreams-peer: " + e.getMessage());
            }
            System.err.println(Options.USAGE);
            System.exit(e.getMessage().isEmpty() ? 0 : 2);
            return;
        }
        System.exit(run(o));
    }

    private static int run(Options o) {
        long started = System.nanoTime();
        try {
            Object predicted = ServedModel.warmUp();
            System.err.printf("ks-kstreams-peer: JPMML warmed up in %.0f ms (predicted %s)%n",
                    (System.nanoTime() - started) / 1e6, predicted);
        } catch (ServedModel.Rejected e) {
            System.err.println("ks-kstreams-peer: the JPMML warm-up failed: " + e.getMessage());
            return 1;
        }
        Registry registry = new Registry();
        Failures failures = new Failures(errorsProducer(o), o.errorsTopic);
        KafkaStreams streams = new KafkaStreams(topology(o, registry, failures), config(o));
        AtomicInteger exit = new AtomicInteger(0);
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("ks-kstreams-peer: a stream thread failed: " + e);
            exit.set(1);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                if (now == KafkaStreams.State.ERROR) {
                    exit.set(1);
                }
                stopped.countDown();
            }
        });
        Thread hook = new Thread(() -> {
            streams.close(Duration.ofSeconds(20));
            failures.close();
            stopped.countDown();
        }, "ks-kstreams-peer-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            streams.start();
        } catch (RuntimeException e) {
            System.err.println("ks-kstreams-peer: cannot start: " + e);
            return 1;
        }
        System.out.println("ks-kstreams-peer (standard) running: application.id=" + o.applicationId + " threads="
                + o.threads + " guarantee=" + o.guarantee + " kafka-streams="
                + org.apache.kafka.common.utils.AppInfoParser.getVersion());
        System.out.flush();
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (exit.get() != 0) {
            // Not a SIGTERM: close from here (the hook would wait for the same close).
            streams.close(Duration.ofSeconds(5));
            failures.close();
        }
        return exit.get();
    }
}
