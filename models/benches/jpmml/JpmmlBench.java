// JPMML-Evaluator's scoring cost per record, warm, as a JVM user runs it: each model interpreted
// (`Evaluator.evaluate(Map)`) and transpiled to JVM bytecode (`TranspilerTransformer` with an
// `InMemoryTranspiler`), over the rows of a CSV whose header names the fields (`expected:*`
// columns are skipped). Every result field is decoded (`EvaluatorUtil.decode`), as ks builds every
// output column of its Prediction. Prints one JSON object per model and mode:
//   {"model":"<file stem>","mode":"interpreted","records":1599,"us_per_record":[r1,r2,...],"mismatches":0}
// Times are CPU time of the scoring thread (see `time`).
// `mismatches` (transpiled only): rows whose decoded target differs from the interpreted one.
//
// Usage: java -cp "$(scripts/install-jpmml.sh)" JpmmlBench [--warmup-seconds S] [--seconds S]
//        [--repeats N] MODEL.pmml=ROWS.csv ...
// Built and run by scripts/install-jpmml.sh and models/benches/jpmml/compare.py.

import java.io.File;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.jpmml.evaluator.Evaluator;
import org.jpmml.evaluator.EvaluatorUtil;
import org.jpmml.evaluator.InputField;
import org.jpmml.evaluator.LoadingModelEvaluatorBuilder;
import org.jpmml.evaluator.ResultField;
import org.jpmml.transpiler.InMemoryTranspiler;
import org.jpmml.transpiler.TranspilerTransformer;

public class JpmmlBench {
    static volatile long sink;
    static final ThreadMXBean CPU = ManagementFactory.getThreadMXBean();

    public static void main(String[] args) throws Exception {
        double warmup = 3.0, seconds = 1.0;
        int repeats = 3;
        List<String[]> jobs = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--warmup-seconds": warmup = Double.parseDouble(args[++i]); break;
                case "--seconds": seconds = Double.parseDouble(args[++i]); break;
                case "--repeats": repeats = Integer.parseInt(args[++i]); break;
                default:
                    String[] job = args[i].split("=", 2);
                    if (job.length != 2) {
                        throw new IllegalArgumentException("expected MODEL.pmml=ROWS.csv, got " + args[i]);
                    }
                    jobs.add(job);
            }
        }
        for (String[] job : jobs) {
            File pmml = new File(job[0]);
            String stem = pmml.getName().replaceFirst("\\.pmml$", "");
            Evaluator interpreted = new LoadingModelEvaluatorBuilder().load(pmml).build();
            interpreted.verify();
            Evaluator transpiled = new LoadingModelEvaluatorBuilder().load(pmml)
                .transform(new TranspilerTransformer(new InMemoryTranspiler(null))).build();
            transpiled.verify();
            List<Map<String, Object>> rows = readRows(new File(job[1]), interpreted);
            int mismatches = 0;
            String target = interpreted.getTargetFields().get(0).getName();
            for (Map<String, Object> row : rows) {
                Object a = EvaluatorUtil.decode(interpreted.evaluate(row).get(target));
                Object b = EvaluatorUtil.decode(transpiled.evaluate(row).get(target));
                if (!Objects.equals(a, b)) {
                    mismatches++;
                }
            }
            for (String mode : new String[] {"interpreted", "transpiled"}) {
                Evaluator ev = mode.equals("interpreted") ? interpreted : transpiled;
                List<String> names = new ArrayList<>();
                for (ResultField f : ev.getTargetFields()) names.add(f.getName());
                for (ResultField f : ev.getOutputFields()) names.add(f.getName());
                time(ev, names, rows, warmup);
                List<String> us = new ArrayList<>();
                for (int r = 0; r < repeats; r++) {
                    us.add(String.format("%.4f", time(ev, names, rows, seconds)));
                }
                System.out.println("{\"model\":\"" + stem + "\",\"mode\":\"" + mode + "\",\"records\":"
                    + rows.size() + ",\"us_per_record\":[" + String.join(",", us) + "]"
                    + (mode.equals("transpiled") ? ",\"mismatches\":" + mismatches : "") + "}");
                System.out.flush();
            }
        }
    }

    /// Scores all rows, pass after pass, for at least `seconds` of this thread's CPU time; CPU µs
    /// per record. CPU time of the scoring thread, not wall time: the machine is shared, and a
    /// descheduled thread must not count (ks is timed the same way). JIT and GC threads do not
    /// count either, which favours JPMML slightly.
    static double time(Evaluator ev, List<String> names, List<Map<String, Object>> rows, double seconds) {
        long budget = (long) (seconds * 1e9);
        long start = CPU.getCurrentThreadCpuTime();
        long n = 0;
        long h = 0;
        long elapsed;
        do {
            for (Map<String, Object> row : rows) {
                Map<String, ?> result = ev.evaluate(row);
                for (String name : names) {
                    Object v = EvaluatorUtil.decode(result.get(name));
                    h += v == null ? 0 : v.hashCode();
                }
            }
            n += rows.size();
            elapsed = CPU.getCurrentThreadCpuTime() - start;
        } while (elapsed < budget);
        sink += h;
        return elapsed / 1e3 / n;
    }

    /// The CSV's rows as raw argument maps of the model's input fields (numbers as Double),
    /// built once so that the timing sees only `evaluate`.
    static List<Map<String, Object>> readRows(File csv, Evaluator ev) throws Exception {
        List<String> lines = Files.readAllLines(csv.toPath(), StandardCharsets.UTF_8);
        String[] header = lines.get(0).split(",", -1);
        List<String> inputs = new ArrayList<>();
        for (InputField f : ev.getInputFields()) inputs.add(f.getName());
        List<Map<String, Object>> rows = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            if (line.isEmpty()) continue;
            String[] cells = line.split(",", -1);
            Map<String, Object> row = new LinkedHashMap<>();
            for (int i = 0; i < header.length && i < cells.length; i++) {
                if (!inputs.contains(header[i])) continue;
                String c = cells[i];
                Object v;
                if (c.isEmpty()) {
                    v = null;
                } else {
                    try {
                        v = Double.valueOf(c);
                    } catch (NumberFormatException e) {
                        v = c;
                    }
                }
                row.put(header[i], v);
            }
            rows.add(row);
        }
        return rows;
    }
}
