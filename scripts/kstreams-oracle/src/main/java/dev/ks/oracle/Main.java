package dev.ks.oracle;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Consumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.test.TestRecord;

/**
 * The Kafka Streams oracle of ks's DSL golden tests (issue #14).
 *
 * <p>Each case of engine/tests/golden/dsl/ (listed in {@link #cases()}) is a Kafka Streams topology.
 * For a case, the oracle reads {@code inputs/<case>.json} ({@code {"case", "notes", "inputs": [{topic,
 * key, value, timestamp}]}}), pipes the records in file order through {@link TopologyTestDriver}
 * with the case's cache size, reads every output topic and writes {@code <case>.json}: the inputs
 * copied in plus the outputs, one record per line so that diffs stay readable.
 *
 * <p>Usage: {@code Main <golden-dir> [case ...]} (no case: all of them).
 */
public final class Main {
  static final String ORACLE = "Kafka Streams 4.1.1 TopologyTestDriver (scripts/kstreams-oracle)";
  static final long CACHE_ON = 10L * 1024 * 1024;
  static final ObjectMapper JSON = new ObjectMapper();

  /** How one output topic is read and rendered. */
  enum OutKind {
    /** String key and value. */
    STRING,
    /** TimeWindowedSerializer key bytes (key + 8-byte start) of a 10 s tumbling window. */
    TIME_WINDOWED_10S,
    /** SessionWindowedSerializer key bytes (key + 8-byte end + 8-byte start). */
    SESSION_WINDOWED
  }

  /** One golden case: its topology, written in words and built on a StreamsBuilder. */
  record Case(
      String name,
      String topology,
      long cacheMaxBytes,
      Map<String, OutKind> outputs,
      Consumer<StreamsBuilder> build) {}

  static final Duration S1 = Duration.ofSeconds(1);
  static final Duration S2 = Duration.ofSeconds(2);
  static final Duration S5 = Duration.ofSeconds(5);
  static final Duration S10 = Duration.ofSeconds(10);

  static String win(Windowed<String> k) {
    return k.key() + "@" + k.window().start() + "/" + k.window().end();
  }

  static String str(Object v) {
    return v == null ? null : v.toString();
  }

  static KStream<String, String> in(StreamsBuilder b) {
    return b.stream("in");
  }

  /** Parses a decimal string; the inputs only hold numbers where a case parses them. */
  static Long parse(String v) {
    return v == null ? null : Long.parseLong(v.trim());
  }

  static boolean even(String v) {
    return v != null && parse(v) % 2 == 0;
  }

  /** "<group>:<n>" → group (the whole value when it has no colon). */
  static String before(String v) {
    int i = v.indexOf(':');
    return i < 0 ? v : v.substring(0, i);
  }

  /** "<group>:<n>" → n. */
  static String after(String v) {
    int i = v.indexOf(':');
    return i < 0 ? "" : v.substring(i + 1);
  }

  static void toOut(KStream<Windowed<String>, ?> s) {
    s.map((k, v) -> KeyValue.pair(win(k), str(v))).to("out", Produced.with(Serdes.String(), Serdes.String()));
  }

  static void tableOut(KTable<String, ?> t) {
    t.toStream().mapValues(Main::str).to("out", Produced.with(Serdes.String(), Serdes.String()));
  }

  static final String TUMBLING = "in.groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(10s, 5s))";
  static final String SESSION = "in.groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(5s, 2s))";
  static final String WKEY = ".toStream().map((k, v) -> (k.key()@start/end, String(v))).to(out)";
  static final String JW = "JoinWindows.ofTimeDifferenceAndGrace(5s, 2s)";
  static final String GROUPED_TABLE =
      "table(in).groupBy((k, v) -> (v before ':', parseLong(v after ':')), Grouped.with(String, Long))";

  static void tumblingCount(StreamsBuilder b) {
    toOut(in(b).groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(S10, S5)).count().toStream());
  }

  static void groupAggregate(StreamsBuilder b) {
    KTable<String, String> t = b.table("in");
    tableOut(
        t.groupBy((k, v) -> KeyValue.pair(before(v), parse(after(v))), Grouped.with(Serdes.String(), Serdes.Long()))
            .aggregate(
                () -> 0L,
                (k, v, agg) -> agg + v,
                (k, v, agg) -> agg - v,
                Materialized.with(Serdes.String(), Serdes.Long())));
  }

  static List<Case> cases() {
    Map<String, OutKind> out = Map.of("out", OutKind.STRING);
    List<Case> c = new ArrayList<>();
    c.add(new Case("tumbling_count", TUMBLING + ".count()" + WKEY, 0, out, Main::tumblingCount));
    c.add(new Case("tumbling_count_cached", TUMBLING + ".count()" + WKEY, CACHE_ON, out, Main::tumblingCount));
    c.add(new Case("hopping_count",
        "in.groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(10s, 2s).advanceBy(5s)).count()" + WKEY, 0, out,
        b -> toOut(in(b).groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(S10, S2).advanceBy(S5)).count().toStream())));
    c.add(new Case("tumbling_reduce",
        "in.mapValues(Long::parseLong).groupByKey(Grouped.with(String, Long))"
            + ".windowedBy(TimeWindows.ofSizeAndGrace(10s, 5s)).reduce(Long::sum)" + WKEY, 0, out,
        b -> toOut(in(b).mapValues(Main::parse).groupByKey(Grouped.with(Serdes.String(), Serdes.Long()))
            .windowedBy(TimeWindows.ofSizeAndGrace(S10, S5))
            .reduce(Long::sum, Materialized.with(Serdes.String(), Serdes.Long())).toStream())));
    c.add(new Case("tumbling_aggregate",
        TUMBLING + ".aggregate(() -> \"\", (k, v, agg) -> agg.isEmpty() ? v : agg + \",\" + v)" + WKEY, 0, out,
        b -> toOut(in(b).groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(S10, S5))
            .aggregate(() -> "", (k, v, agg) -> agg.isEmpty() ? v : agg + "," + v,
                Materialized.with(Serdes.String(), Serdes.String())).toStream())));
    c.add(new Case("sliding_count",
        "in.groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(5s, 2s)).count()" + WKEY, 0, out,
        b -> toOut(in(b).groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(S5, S2)).count().toStream())));
    c.add(new Case("sliding_count_cached",
        "in.groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(5s, 2s)).count()" + WKEY, CACHE_ON, out,
        b -> toOut(in(b).groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(S5, S2)).count().toStream())));
    c.add(new Case("sliding_reduce",
        "in.mapValues(Long::parseLong).groupByKey(Grouped.with(String, Long))"
            + ".windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(5s, 2s)).reduce(Long::sum)" + WKEY, 0, out,
        b -> toOut(in(b).mapValues(Main::parse).groupByKey(Grouped.with(Serdes.String(), Serdes.Long()))
            .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(S5, S2))
            .reduce(Long::sum, Materialized.with(Serdes.String(), Serdes.Long())).toStream())));
    c.add(new Case("session_count", SESSION + ".count()" + WKEY + " (merged sessions emit null values)", 0, out,
        b -> toOut(in(b).groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(S5, S2)).count().toStream())));
    c.add(new Case("session_count_cached", SESSION + ".count()" + WKEY + " (merged sessions emit null values)",
        CACHE_ON, out,
        b -> toOut(in(b).groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(S5, S2)).count().toStream())));
    c.add(new Case("session_reduce", SESSION + ".reduce((a, b) -> a + \",\" + b)" + WKEY, 0, out,
        b -> toOut(in(b).groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(S5, S2))
            .reduce((x, y) -> x + "," + y, Materialized.with(Serdes.String(), Serdes.String())).toStream())));
    c.add(new Case("tumbling_suppress",
        TUMBLING + ".count(Materialized.with(String, Long)).suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))" + WKEY, 0, out,
        b -> toOut(in(b).groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(S10, S5)).count(Materialized.with(Serdes.String(), Serdes.Long()))
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded())).toStream())));
    c.add(new Case("session_suppress",
        SESSION + ".count(Materialized.with(String, Long)).suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))" + WKEY, 0, out,
        b -> toOut(in(b).groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(S5, S2)).count(Materialized.with(Serdes.String(), Serdes.Long()))
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded())).toStream())));
    c.add(new Case("windowed_key_bytes",
        TUMBLING + ".count().toStream().mapValues(String).to(out, Produced.with("
            + "WindowedSerdes.timeWindowedSerdeFrom(String.class, 10000), String)); "
            + SESSION + ".count().toStream().mapValues(String).to(out_session, Produced.with("
            + "WindowedSerdes.sessionWindowedSerdeFrom(String.class), String))",
        0, Map.of("out", OutKind.TIME_WINDOWED_10S, "out_session", OutKind.SESSION_WINDOWED),
        b -> {
          KStream<String, String> s = in(b);
          s.groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(S10, S5)).count().toStream().mapValues(Main::str)
              .to("out", Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, 10_000L), Serdes.String()));
          s.groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(S5, S2)).count().toStream().mapValues(Main::str)
              .to("out_session", Produced.with(WindowedSerdes.sessionWindowedSerdeFrom(String.class), Serdes.String()));
        }));
    StreamJoined<String, String, String> sj = StreamJoined.with(Serdes.String(), Serdes.String(), Serdes.String());
    c.add(new Case("stream_join_inner",
        "left.join(right, (l, r) -> l + \"+\" + r, " + JW + ").to(out)", 0, out,
        b -> b.<String, String>stream("left").join(b.<String, String>stream("right"), (l, r) -> l + "+" + r,
            JoinWindows.ofTimeDifferenceAndGrace(S5, S2), sj).to("out")));
    c.add(new Case("stream_join_left",
        "left.leftJoin(right, (l, r) -> l + \"+\" + r /* null r renders \"null\" */, " + JW + ").to(out)", 0, out,
        b -> b.<String, String>stream("left").leftJoin(b.<String, String>stream("right"), (l, r) -> l + "+" + r,
            JoinWindows.ofTimeDifferenceAndGrace(S5, S2), sj).to("out")));
    c.add(new Case("stream_join_outer",
        "left.outerJoin(right, (l, r) -> l + \"+\" + r /* null side renders \"null\" */, " + JW + ").to(out)", 0, out,
        b -> b.<String, String>stream("left").outerJoin(b.<String, String>stream("right"), (l, r) -> l + "+" + r,
            JoinWindows.ofTimeDifferenceAndGrace(S5, S2), sj).to("out")));
    c.add(new Case("stream_join_before_after",
        "left.join(right, (l, r) -> l + \"+\" + r, " + JW + ".before(1s)).to(out)"
            + " (right may be up to 1 s before and 5 s after left)", 0, out,
        b -> b.<String, String>stream("left").join(b.<String, String>stream("right"), (l, r) -> l + "+" + r,
            JoinWindows.ofTimeDifferenceAndGrace(S5, S2).before(S1), sj).to("out")));
    c.add(new Case("table_filter",
        "table(in).filter((k, v) -> parseLong(v) % 2 == 0).toStream().to(out)", 0, out,
        b -> tableOut(b.<String, String>table("in").filter((k, v) -> even(v)))));
    c.add(new Case("table_filter_not",
        "table(in).filterNot((k, v) -> parseLong(v) % 2 == 0).toStream().to(out)", 0, out,
        b -> tableOut(b.<String, String>table("in").filterNot((k, v) -> even(v)))));
    c.add(new Case("table_map_values",
        "table(in).mapValues(v -> v.toUpperCase()).toStream().to(out)", 0, out,
        b -> tableOut(b.<String, String>table("in").mapValues(v -> v.toUpperCase()))));
    c.add(new Case("table_group_count",
        "table(in).groupBy((k, v) -> (v, v)).count().toStream().mapValues(String).to(out)", 0, out,
        b -> tableOut(b.<String, String>table("in").groupBy((k, v) -> KeyValue.pair(v, v)).count())));
    String agg = GROUPED_TABLE + ".aggregate(() -> 0L, (k, v, agg) -> agg + v, (k, v, agg) -> agg - v,"
        + " Materialized.with(String, Long)).toStream().mapValues(String).to(out)";
    c.add(new Case("table_group_aggregate", agg, 0, out, Main::groupAggregate));
    c.add(new Case("table_group_aggregate_cached", agg, CACHE_ON, out, Main::groupAggregate));
    c.add(new Case("table_group_reduce",
        GROUPED_TABLE + ".reduce((a, b) -> a + b, (a, b) -> a - b, Materialized.with(String, Long))"
            + ".toStream().mapValues(String).to(out)", 0, out,
        b -> tableOut(b.<String, String>table("in")
            .groupBy((k, v) -> KeyValue.pair(before(v), parse(after(v))), Grouped.with(Serdes.String(), Serdes.Long()))
            .reduce(Long::sum, (x, y) -> x - y, Materialized.with(Serdes.String(), Serdes.Long())))));
    c.add(new Case("table_join_inner",
        "table(left).join(table(right), (l, r) -> l + \"+\" + r).toStream().to(out)", 0, out,
        b -> tableOut(b.<String, String>table("left").join(b.<String, String>table("right"), (l, r) -> l + "+" + r))));
    c.add(new Case("table_join_left",
        "table(left).leftJoin(table(right), (l, r) -> l + \"+\" + r /* null r renders \"null\" */).toStream().to(out)",
        0, out,
        b -> tableOut(b.<String, String>table("left").leftJoin(b.<String, String>table("right"), (l, r) -> l + "+" + r))));
    c.add(new Case("table_join_outer",
        "table(left).outerJoin(table(right), (l, r) -> l + \"+\" + r /* null side renders \"null\" */).toStream().to(out)",
        0, out,
        b -> tableOut(b.<String, String>table("left").outerJoin(b.<String, String>table("right"), (l, r) -> l + "+" + r))));
    c.add(new Case("fk_join",
        "table(left = orders \"<customerId>:<amount>\").join(table(right = customers), (k, v) -> v before ':',"
            + " (o, c) -> (o after ':') + \"/\" + c).toStream().to(out)", 0, out,
        b -> tableOut(b.<String, String>table("left").join(b.<String, String>table("right"),
            (String k, String v) -> before(v), (o, cu) -> after(o) + "/" + cu))));
    return c;
  }

  public static void main(String[] args) throws IOException {
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
    if (args.length < 1) {
      System.err.println("usage: Main <golden-dir> [case ...]");
      System.exit(2);
    }
    Path dir = Path.of(args[0]);
    List<String> wanted = List.of(args).subList(1, args.length);
    List<Case> all = cases();
    for (String w : wanted) {
      if (all.stream().noneMatch(c -> c.name().equals(w))) {
        System.err.println("unknown case: " + w);
        System.exit(2);
      }
    }
    int done = 0;
    for (Case c : all) {
      if (!wanted.isEmpty() && !wanted.contains(c.name())) {
        continue;
      }
      Path input = dir.resolve("inputs").resolve(c.name() + ".json");
      if (!Files.exists(input)) {
        System.err.println("missing input file " + input);
        System.exit(1);
      }
      String golden = run(c, JSON.readTree(input.toFile()));
      Files.writeString(dir.resolve(c.name() + ".json"), golden, StandardCharsets.UTF_8);
      System.err.println("wrote " + dir.resolve(c.name() + ".json"));
      done++;
    }
    System.err.println(done + " golden files written");
  }

  static String text(JsonNode n, String field) {
    JsonNode v = n.get(field);
    return v == null || v.isNull() ? null : v.asText();
  }

  static String run(Case c, JsonNode inputFile) throws IOException {
    StreamsBuilder builder = new StreamsBuilder();
    c.build().accept(builder);
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, "ks-oracle-" + c.name());
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, c.cacheMaxBytes());
    p.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("ks-oracle-").toString());
    List<Map<String, Object>> inputs = new ArrayList<>();
    Map<String, List<Map<String, Object>>> outputs = new LinkedHashMap<>();
    try (TopologyTestDriver driver = new TopologyTestDriver(builder.build(), p)) {
      Map<String, TestInputTopic<String, String>> topics = new LinkedHashMap<>();
      String named = text(inputFile, "case");
      if (named != null && !named.equals(c.name())) {
        throw new IOException(c.name() + ": input file names case " + named);
      }
      JsonNode records = inputFile.get("inputs");
      if (records == null || !records.isArray()) {
        throw new IOException(c.name() + ": input file has no \"inputs\" array");
      }
      for (JsonNode r : records) {
        String topic = text(r, "topic");
        if (topic == null || r.get("timestamp") == null || !r.get("timestamp").canConvertToLong()) {
          throw new IOException(c.name() + ": input record without topic or integer timestamp: " + r);
        }
        TestInputTopic<String, String> t = topics.computeIfAbsent(topic,
            n -> driver.createInputTopic(n, new StringSerializer(), new StringSerializer()));
        long ts = r.get("timestamp").asLong();
        t.pipeInput(new TestRecord<>(text(r, "key"), text(r, "value"), null, ts));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("topic", topic);
        m.put("key", text(r, "key"));
        m.put("value", text(r, "value"));
        m.put("timestamp", ts);
        inputs.add(m);
      }
      for (Map.Entry<String, OutKind> o : new java.util.TreeMap<>(c.outputs()).entrySet()) {
        List<Map<String, Object>> list = new ArrayList<>();
        if (o.getValue() == OutKind.STRING) {
          TestOutputTopic<String, String> t =
              driver.createOutputTopic(o.getKey(), new StringDeserializer(), new StringDeserializer());
          for (TestRecord<String, String> r : t.readRecordsToList()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("key", r.key());
            m.put("value", r.value());
            m.put("timestamp", r.timestamp());
            list.add(m);
          }
        } else {
          TestOutputTopic<byte[], String> t =
              driver.createOutputTopic(o.getKey(), new ByteArrayDeserializer(), new StringDeserializer());
          for (TestRecord<byte[], String> r : t.readRecordsToList()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("key", decodeWindowed(r.key(), o.getValue()));
            m.put("key_hex", hex(r.key()));
            m.put("value", r.value());
            m.put("timestamp", r.timestamp());
            list.add(m);
          }
        }
        outputs.put(o.getKey(), list);
      }
    }
    StringBuilder s = new StringBuilder();
    s.append("{\n");
    s.append("  \"case\": ").append(JSON.writeValueAsString(c.name())).append(",\n");
    s.append("  \"oracle\": ").append(JSON.writeValueAsString(ORACLE)).append(",\n");
    s.append("  \"topology\": ").append(JSON.writeValueAsString(c.topology())).append(",\n");
    s.append("  \"cache_max_bytes\": ").append(c.cacheMaxBytes()).append(",\n");
    s.append("  \"notes\": ").append(JSON.writeValueAsString(text(inputFile, "notes"))).append(",\n");
    s.append("  \"inputs\": [");
    appendRecords(s, inputs, "    ");
    s.append("],\n");
    s.append("  \"outputs\": {");
    int i = 0;
    for (Map.Entry<String, List<Map<String, Object>>> e : outputs.entrySet()) {
      s.append(i++ == 0 ? "\n" : ",\n");
      s.append("    ").append(JSON.writeValueAsString(e.getKey())).append(": [");
      appendRecords(s, e.getValue(), "      ");
      s.append("]");
    }
    s.append("\n  }\n}\n");
    return s.toString();
  }

  static void appendRecords(StringBuilder s, List<Map<String, Object>> records, String indent) throws IOException {
    for (int i = 0; i < records.size(); i++) {
      s.append(i == 0 ? "\n" : ",\n").append(indent).append(JSON.writeValueAsString(records.get(i)));
    }
    if (!records.isEmpty()) {
      s.append("\n").append(indent, 0, indent.length() - 2);
    }
  }

  static String hex(byte[] b) {
    StringBuilder s = new StringBuilder();
    for (byte x : b) {
      s.append(String.format("%02x", x));
    }
    return s.toString();
  }

  /** Renders a windowed key's bytes as "key@start/end", checking the layout the serializer wrote. */
  static String decodeWindowed(byte[] b, OutKind kind) throws IOException {
    ByteBuffer buf = ByteBuffer.wrap(b);
    if (kind == OutKind.TIME_WINDOWED_10S) {
      if (b.length < 8) {
        throw new IOException("time-windowed key shorter than 8 bytes: " + hex(b));
      }
      long start = buf.getLong(b.length - 8);
      String key = new String(b, 0, b.length - 8, StandardCharsets.UTF_8);
      return key + "@" + start + "/" + (start + 10_000L);
    }
    if (b.length < 16) {
      throw new IOException("session-windowed key shorter than 16 bytes: " + hex(b));
    }
    long end = buf.getLong(b.length - 16);
    long start = buf.getLong(b.length - 8);
    String key = new String(b, 0, b.length - 16, StandardCharsets.UTF_8);
    return key + "@" + start + "/" + end;
  }
}
