"""Write real safetensors, GGUF and ONNX files with the reference Python libraries, for
custody-scan's `real_safetensors_gguf_and_onnx_files_are_clean` test
(scripts/with-real-models.sh installs the packages and runs this before the tests).

Usage: python gen-real-formats.py OUT_DIR   (needs: safetensors numpy gguf onnx)

Naming convention read by the test:
  *.malicious.*  must be judged malicious (attack samples built with the same libraries);
  *.low.*        must be clean with nothing above Low (chat templates, custom op domains);
  anything else  must be clean with nothing above Info.
Only *.safetensors, *.gguf and *.onnx files are scanned; external-data files beside the ONNX
models (*.data) are not models and are skipped.
"""

import os
import sys

import numpy as np


def safetensors_files(out):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {
        "embed.weight": rng.standard_normal((16, 8), dtype=np.float32),
        "layer.0.bias": rng.standard_normal(8).astype(np.float16),
        "layer.0.scale": np.arange(5, dtype=np.float64),
        "ids": np.arange(7, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(3, dtype=np.uint8),
        "i16": np.arange(4, dtype=np.int16),
        "u32": np.arange(4, dtype=np.uint32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "scalar": np.array(3.5, dtype=np.float32),
    }
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "np"})
    save_file({"only": np.ones(1, dtype=np.int8)}, os.path.join(out, "tiny.safetensors"))


TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)
EVIL_TEMPLATE = "{{ cycler.__init__.__globals__.os.popen('id').read() }}" + TEMPLATE


def gguf_files(out):
    import gguf
    from gguf.quants import quantize

    def write(name, template=None, quantized=True):
        w = gguf.GGUFWriter(os.path.join(out, name), "llama")
        w.add_block_count(1)
        w.add_context_length(128)
        w.add_embedding_length(64)
        w.add_tokenizer_model("gpt2")
        w.add_token_list(["<s>", "</s>", "a", "b"])
        w.add_token_scores([0.0, 0.0, -1.0, -2.0])
        if template is not None:
            w.add_chat_template(template)
        rng = np.random.default_rng(1)
        w.add_tensor("token_embd.weight", rng.standard_normal((4, 64), dtype=np.float32))
        w.add_tensor("output_norm.weight", np.ones(64, dtype=np.float16))
        if quantized:
            q = rng.standard_normal((8, 256), dtype=np.float32)
            for qtype in (gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0):
                data = quantize(q, qtype)
                w.add_tensor(f"blk.0.{qtype.name.lower()}.weight", data, raw_dtype=qtype)
        w.add_tensor("blk.0.bf16.weight", np.ones((2, 32), dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    write("model.gguf")
    write("plain-f32.gguf", quantized=False)
    write("chat.low.gguf", template=TEMPLATE)
    write("ssti.malicious.gguf", template=EVIL_TEMPLATE)


def onnx_files(out):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import set_external_data

    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(4, dtype=np.float32), "b")
    then_g = helper.make_graph(
        [helper.make_node("Relu", ["y"], ["t"])], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])]
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["y"], ["e"])], "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 4])]
    )
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["y"]),
        helper.make_node("ReduceSum", ["y"], ["s"], keepdims=0),
        helper.make_node("Cast", ["s"], ["c"], to=TensorProto.BOOL),
        helper.make_node("If", ["c"], ["z"], then_branch=then_g, else_branch=else_g),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="gen_formats")
    model.metadata_props.add(key="author", value="custody")
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "model.onnx"))

    # The same with its weights in a file beside it (reported as info only).
    ext = onnx.ModelProto()
    ext.CopyFrom(model)
    onnx.save_model(
        ext, os.path.join(out, "external.onnx"), save_as_external_data=True, location="external.data", size_threshold=0
    )

    # A custom operator domain: needs a runtime library (low).
    custom = helper.make_model(
        helper.make_graph(
            [helper.make_node("MyOp", ["x"], ["z"], domain="com.example.ops")],
            "c",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
        ),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.ops", 1)],
    )
    onnx.save(custom, os.path.join(out, "custom-domain.low.onnx"))

    # External data that climbs out of the model directory (CVE-2022-25882 style).
    evil = onnx.ModelProto()
    evil.CopyFrom(model)
    t = evil.graph.initializer[0]
    set_external_data(t, location="../../../../etc/passwd", offset=0, length=64)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    onnx.save(evil, os.path.join(out, "escape.malicious.onnx"))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    safetensors_files(out)
    gguf_files(out)
    onnx_files(out)


if __name__ == "__main__":
    main()
