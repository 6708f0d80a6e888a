package dev.ks.kstreams;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The command line of the peer: the options ks-server has that a Kafka Streams app can honour. */
final class Options {
    String brokers = "127.0.0.1:9092";
    String applicationId = "ks-kstreams-peer";
    String stateDir = System.getProperty("java.io.tmpdir") + "/ks-kstreams-peer";
    String dataTopic = "models_data";
    String modelsTopic = "models_models";
    String resultsTopic = "models_results";
    String errorsTopic = "models_errors";
    int threads = 1;
    /** at_least_once or exactly_once (Kafka Streams' exactly_once_v2). */
    String guarantee = "at_least_once";
    /** Empty: the guarantee's default (Kafka Streams: 30 s at-least-once, 100 ms exactly-once). */
    Long commitIntervalMs = null;
    long sessionTimeoutMs = 10_000;
    /** Any other Kafka Streams / client property, passed through as given. */
    final Map<String, String> extra = new LinkedHashMap<>();

    static final String USAGE = String.join("\n",
            "usage: ks-kstreams-peer [--brokers HOST:PORT] [--application-id ID] [--state-dir DIR]",
            "         [--data-topic T] [--models-topic T] [--results-topic T] [--errors-topic T]",
            "         [--threads N] [--processing-guarantee at_least_once|exactly_once]",
            "         [--commit-interval-ms MS] [--session-timeout-ms MS] [--config KEY=VALUE]...",
            "The tutorial's model server on Kafka Streams: PMML models (JPMML-Evaluator) from the models",
            "topic into a global store, wine records scored per data type, serving statistics in a",
            "RocksDB store, one JSON result per record on the results topic (as ks-server --store standard).");

    /** Thrown for a bad command line; the message is printed with the usage. */
    static final class BadArgs extends Exception {
        BadArgs(String message) {
            super(message);
        }
    }

    static Options parse(String[] args) throws BadArgs {
        Options o = new Options();
        List<String> rest = new ArrayList<>(List.of(args));
        while (!rest.isEmpty()) {
            String flag = rest.remove(0);
            if (flag.equals("--help") || flag.equals("-h")) {
                throw new BadArgs("");
            }
            String value;
            int eq = flag.indexOf('=');
            if (flag.startsWith("--") && eq > 0) {
                value = flag.substring(eq + 1);
                flag = flag.substring(0, eq);
            } else {
                if (rest.isEmpty()) {
                    throw new BadArgs(flag + " needs a value");
                }
                value = rest.remove(0);
            }
            switch (flag) {
                case "--brokers" -> o.brokers = value;
                case "--application-id" -> o.applicationId = value;
                case "--state-dir" -> o.stateDir = value;
                case "--data-topic" -> o.dataTopic = value;
                case "--models-topic" -> o.modelsTopic = value;
                case "--results-topic" -> o.resultsTopic = value;
                case "--errors-topic" -> o.errorsTopic = value;
                case "--threads" -> o.threads = positive(flag, value);
                case "--processing-guarantee" -> {
                    if (!value.equals("at_least_once") && !value.equals("exactly_once")) {
                        throw new BadArgs(flag + " " + value + ": expected at_least_once or exactly_once");
                    }
                    o.guarantee = value;
                }
                case "--commit-interval-ms" -> o.commitIntervalMs = (long) positive(flag, value);
                case "--session-timeout-ms" -> o.sessionTimeoutMs = positive(flag, value);
                case "--config" -> {
                    int at = value.indexOf('=');
                    if (at <= 0) {
                        throw new BadArgs("--config " + value + ": expected KEY=VALUE");
                    }
                    o.extra.put(value.substring(0, at), value.substring(at + 1));
                }
                default -> throw new BadArgs("unknown option " + flag);
            }
        }
        for (String[] t : new String[][] {
                {"--brokers", o.brokers}, {"--application-id", o.applicationId},
                {"--data-topic", o.dataTopic}, {"--models-topic", o.modelsTopic},
                {"--results-topic", o.resultsTopic}, {"--errors-topic", o.errorsTopic}}) {
            if (t[1].isBlank()) {
                throw new BadArgs(t[0] + " must not be empty");
            }
        }
        return o;
    }

    private static int positive(String flag, String value) throws BadArgs {
        try {
            int n = Integer.parseInt(value);
            if (n < 1) {
                throw new BadArgs(flag + " must be at least 1");
            }
            return n;
        } catch (NumberFormatException e) {
            throw new BadArgs(flag + " " + value + ": not a number");
        }
    }
}
