package dev.ks.kstreams;

import com.lightbend.model.Modeldescriptor.ModelDescriptor;
import com.lightbend.model.Winerecord.WineRecord;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jpmml.evaluator.Evaluator;
import org.jpmml.evaluator.EvaluatorUtil;
import org.jpmml.evaluator.FieldValue;
import org.jpmml.evaluator.HasProbability;
import org.jpmml.evaluator.InputField;
import org.jpmml.evaluator.LoadingModelEvaluatorBuilder;
import org.jpmml.evaluator.TargetField;

/** A PMML model built by JPMML-Evaluator, ready to score wine records. Immutable, thread-safe. */
final class ServedModel {
    /** The wine features in the column order of winequality_red.csv, as the PMML fields name them. */
    static final List<String> WINE_FEATURES = List.of("fixed acidity", "volatile acidity", "citric acid",
            "residual sugar", "chlorides", "free sulfur dioxide", "total sulfur dioxide", "density", "pH",
            "sulphates", "alcohol");

    /** The largest model file a location may name (as ks-server). */
    static final long MAX_MODEL_FILE = 512L * 1024 * 1024;

    final String dataType;
    final String name;
    final String description;
    final String modelType;
    /** {@code <partition>:<offset>} of the model message, as ks-server names model versions. */
    final String version;
    private final Evaluator evaluator;
    private final InputField[] inputs;
    /** Per input, its index in {@link #WINE_FEATURES}, or -1 (then the value is missing). */
    private final int[] featureIndex;
    private final TargetField target;

    /** A model message that cannot serve: why, and what was known of it. */
    static final class Rejected extends Exception {
        final String dataType;
        final String name;

        Rejected(String dataType, String name, String reason) {
            super(reason);
            this.dataType = dataType;
            this.name = name;
        }
    }

    /** The outcome of one scoring. */
    record Prediction(Object value, Map<String, Double> probabilities) {
    }

    private ServedModel(ModelDescriptor md, String version, Evaluator evaluator) {
        this.dataType = md.getDataType();
        this.name = md.getName();
        this.description = md.getDescription();
        this.modelType = md.getModeltype().name();
        this.version = version;
        this.evaluator = evaluator;
        List<InputField> fields = new ArrayList<>(evaluator.getInputFields());
        this.inputs = fields.toArray(new InputField[0]);
        this.featureIndex = new int[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            featureIndex[i] = WINE_FEATURES.indexOf(inputs[i].getName());
        }
        List<TargetField> targets = evaluator.getTargetFields();
        this.target = targets.isEmpty() ? null : targets.get(0);
    }

    /** Decodes a model message and builds its model (blocking: parses the PMML). */
    static ServedModel build(byte[] payload, String version) throws Rejected {
        ModelDescriptor md;
        try {
            md = ModelDescriptor.parseFrom(payload);
        } catch (IOException e) {
            throw new Rejected("", "", "not a ModelDescriptor: " + e.getMessage());
        }
        String dataType = md.getDataType();
        String name = md.getName();
        if (dataType.isEmpty()) {
            throw new Rejected(dataType, name, "the model has no dataType");
        }
        switch (md.getModeltype()) {
            case PMML -> {
            }
            case TENSORFLOW -> throw new Rejected(dataType, name,
                    "TENSORFLOW models are not served by the Kafka Streams peer (JPMML-Evaluator: PMML only)");
            default -> throw new Rejected(dataType, name, "unknown model type " + md.getModeltypeValue());
        }
        byte[] bytes = switch (md.getMessageContentCase()) {
            case DATA -> md.getData().toByteArray();
            case LOCATION -> readLocation(dataType, name, md.getLocation());
            default -> throw new Rejected(dataType, name, "the descriptor carries no model");
        };
        try {
            Evaluator evaluator = new LoadingModelEvaluatorBuilder()
                    .load(new ByteArrayInputStream(bytes))
                    .build();
            evaluator.verify();
            return new ServedModel(md, version, evaluator);
        } catch (Exception | LinkageError e) {
            throw new Rejected(dataType, name, "model " + name + " does not build: " + e);
        }
    }

    private static byte[] readLocation(String dataType, String name, String location) throws Rejected {
        Path path = Path.of(location);
        try {
            if (!Files.isRegularFile(path)) {
                throw new Rejected(dataType, name, location + " is not a file");
            }
            long size = Files.size(path);
            if (size > MAX_MODEL_FILE) {
                throw new Rejected(dataType, name, location + " is " + size + " bytes, over " + MAX_MODEL_FILE);
            }
            return Files.readAllBytes(path);
        } catch (IOException e) {
            throw new Rejected(dataType, name, "cannot read " + location + ": " + e.getMessage());
        }
    }

    /**
     * A tiny PMML tree, built and scored once at start so the first real model does not pay for
     * loading JAXB and JPMML's classes (seconds on a cold JVM, during which records would go
     * unscored).
     */
    private static final String WARM_UP_PMML = String.join("\n",
            "<PMML xmlns=\"http://www.dmg.org/PMML-4_4\" version=\"4.4\">",
            "  <Header/>",
            "  <DataDictionary numberOfFields=\"2\">",
            "    <DataField name=\"alcohol\" optype=\"continuous\" dataType=\"double\"/>",
            "    <DataField name=\"quality\" optype=\"continuous\" dataType=\"double\"/>",
            "  </DataDictionary>",
            "  <TreeModel functionName=\"regression\" splitCharacteristic=\"binarySplit\">",
            "    <MiningSchema>",
            "      <MiningField name=\"alcohol\"/>",
            "      <MiningField name=\"quality\" usageType=\"target\"/>",
            "    </MiningSchema>",
            "    <Node score=\"5\"><True/>",
            "      <Node score=\"6\"><SimplePredicate field=\"alcohol\" operator=\"greaterThan\" value=\"10.5\"/></Node>",
            "      <Node score=\"5\"><True/></Node>",
            "    </Node>",
            "  </TreeModel>",
            "</PMML>");

    /** Builds and scores {@link #WARM_UP_PMML}; returns what it predicted for a 11 % wine. */
    static Object warmUp() throws Rejected {
        ModelDescriptor md = ModelDescriptor.newBuilder().setName("warm-up").setDataType("warm-up")
                .setModeltype(ModelDescriptor.ModelType.PMML)
                .setData(com.google.protobuf.ByteString.copyFromUtf8(WARM_UP_PMML)).build();
        ServedModel m = build(md.toByteArray(), "0:0");
        return m.score(WineRecord.newBuilder().setAlcohol(11.0).setDataType("warm-up").build()).value();
    }

    /** The 11 features of a wine record, in {@link #WINE_FEATURES} order. */
    static double[] features(WineRecord w) {
        return new double[] {w.getFixedAcidity(), w.getVolatileAcidity(), w.getCitricAcid(),
                w.getResidualSugar(), w.getChlorides(), w.getFreeSulfurDioxide(), w.getTotalSulfurDioxide(),
                w.getDensity(), w.getPH(), w.getSulphates(), w.getAlcohol()};
    }

    /** Scores one record; an exception (JPMML's) if the model cannot. */
    Prediction score(WineRecord w) {
        double[] f = features(w);
        Map<String, FieldValue> arguments = new HashMap<>(inputs.length * 2);
        for (int i = 0; i < inputs.length; i++) {
            int at = featureIndex[i];
            arguments.put(inputs[i].getName(), inputs[i].prepare(at >= 0 ? f[at] : null));
        }
        Map<String, ?> results = evaluator.evaluate(arguments);
        if (target == null) {
            return new Prediction(null, Collections.emptyMap());
        }
        Object raw = results.get(target.getName());
        Map<String, Double> probabilities = Collections.emptyMap();
        if (raw instanceof HasProbability hp && target.getCategories() != null) {
            probabilities = new LinkedHashMap<>();
            for (Object category : target.getCategories()) {
                Double p = hp.getProbability(category);
                if (p != null) {
                    probabilities.put(String.valueOf(category), p);
                }
            }
        }
        return new Prediction(EvaluatorUtil.decode(raw), probabilities);
    }
}
