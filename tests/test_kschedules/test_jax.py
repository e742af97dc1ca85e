"""The schedules on Keras's JAX backend: same values as on TensorFlow, under jax.jit.

The GPU path of this project runs Keras on JAX, so the library must not depend
on TensorFlow. A fresh interpreter with KERAS_BACKEND=jax rebuilds every
schedule of the contract set from its serialized config and evaluates it
under `jax.jit`; it also checks that importing kschedules imported no
TensorFlow.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np

from evaluate import evaluate
from test_contract import SCHEDULES, STEPS

CHILD = textwrap.dedent("""
    import json, sys
    import jax, keras
    import kschedules
    assert keras.backend.backend() == "jax", keras.backend.backend()
    configs, steps = json.load(sys.stdin)
    values = {}
    for name, config in configs.items():
        schedule = keras.saving.deserialize_keras_object(config)
        jitted = jax.jit(lambda step: schedule(step))
        values[name] = [float(jitted(step)) for step in steps]
    print(json.dumps({"values": values, "tensorflow_imported": "tensorflow" in sys.modules}))
""")


def test_every_schedule_on_the_jax_backend_equals_tensorflow():
    configs = {name: keras.saving.serialize_keras_object(s) for name, s in SCHEDULES.items()}
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps([configs, STEPS]),
                            capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert not output["tensorflow_imported"]
    assert set(output["values"]) == set(SCHEDULES)
    for name, schedule in SCHEDULES.items():
        np.testing.assert_allclose(output["values"][name], evaluate(schedule, STEPS),
                                   rtol=1e-6, atol=1e-9, err_msg=name)
