package dev.ks.kstreams;

import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The newest built model per data type, shared by every stream thread of the process (the global
 * thread installs, stream threads read). A model is installed whole.
 */
final class Registry {
    private final ConcurrentHashMap<String, ServedModel> models = new ConcurrentHashMap<>();
    /** Descriptors found in the global store (restored at start) that were tried already. */
    private final ConcurrentHashMap<String, byte[]> tried = new ConcurrentHashMap<>();

    ServedModel get(String dataType) {
        return models.get(dataType);
    }

    void install(ServedModel model) {
        models.put(model.dataType, model);
    }

    /** Whether this stored descriptor of {@code dataType} is new to us (then it is remembered). */
    boolean firstSight(String dataType, byte[] descriptor) {
        byte[] before = tried.put(dataType, descriptor);
        return before == null || !Arrays.equals(before, descriptor);
    }
}
