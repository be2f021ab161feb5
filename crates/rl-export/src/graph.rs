//! A small builder of ONNX graphs over the protobuf types that `tract-onnx` exposes: named
//! constants (initializers), nodes with attributes, and typed inputs and outputs.

use tract_onnx::pb::{
    self, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension::Value as DimValue, type_proto,
};

/// The ONNX operator set the graphs use (rsl_rl's and IsaacLab's exporters use 18).
pub const OPSET: i64 = 18;
/// The IR version of opset 18 (ONNX 1.13).
pub const IR_VERSION: i64 = 8;

/// A dimension of a graph input or output: fixed, or named and chosen at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic size (`"batch"`).
    Named(&'static str),
}

/// An attribute value of a node.
#[derive(Debug, Clone)]
pub enum Attr {
    /// One integer.
    Int(i64),
    /// One float.
    Float(f32),
}

/// Graph under construction: nodes in order, constants, inputs and outputs.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    /// Counter of generated value names.
    next: usize,
}

impl GraphBuilder {
    /// A new, empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a graph input `name` of element type `dtype` and shape `dims`.
    pub fn input(&mut self, name: &str, dtype: DataType, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, dtype, dims));
        name.to_string()
    }

    /// Declares the value `value` a graph output named `name` (an `Identity` renames it).
    pub fn output(&mut self, value: &str, name: &str, dtype: DataType, dims: &[Dim]) {
        if value != name {
            self.nodes.push(NodeProto {
                input: vec![value.to_string()],
                output: vec![name.to_string()],
                name: format!("output_{name}"),
                op_type: "Identity".into(),
                ..Default::default()
            });
        }
        self.outputs.push(value_info(name, dtype, dims));
    }

    /// A float constant `name` of shape `dims` holding `values` (row-major).
    pub fn floats(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, DataType::Float, dims, raw)
    }

    /// An int64 constant `name` of shape `dims` holding `values`.
    pub fn ints(&mut self, name: &str, dims: &[usize], values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, DataType::Int64, dims, raw)
    }

    fn constant(&mut self, name: &str, dtype: DataType, dims: &[usize], raw: Vec<u8>) -> String {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: dtype as i32,
            name: name.to_string(),
            raw_data: raw,
            ..Default::default()
        });
        name.to_string()
    }

    /// Appends a node `op` over `inputs` with `attrs`, its one output named after `hint`;
    /// returns the output's name.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: &[(&str, Attr)],
        hint: &str,
    ) -> String {
        self.node_n(op, inputs, attrs, hint, 1).remove(0)
    }

    /// Appends a node `op` with `outputs` outputs; returns their names.
    pub fn node_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: &[(&str, Attr)],
        hint: &str,
        outputs: usize,
    ) -> Vec<String> {
        self.next += 1;
        let id = self.next;
        let names: Vec<String> = (0..outputs)
            .map(|k| {
                if outputs == 1 {
                    format!("{hint}_{id}")
                } else {
                    format!("{hint}_{id}_{k}")
                }
            })
            .collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: names.clone(),
            name: format!("{op}_{id}"),
            op_type: op.to_string(),
            attribute: attrs.iter().map(|(n, a)| attribute(n, a)).collect(),
            ..Default::default()
        });
        names
    }

    /// The model: this graph, opset [`OPSET`], the producer's name and version, and
    /// `metadata` as the model's metadata properties.
    pub fn finish(self, name: &str, doc: &str, metadata: &[(&str, String)]) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "cross-gym".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.to_string(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: name.to_string(),
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            metadata_props: metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: k.to_string(),
                    value: v.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }
}

fn attribute(name: &str, value: &Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    match value {
        Attr::Int(i) => {
            a.i = *i;
            a.r#type = AttributeType::Int as i32;
        }
        Attr::Float(f) => {
            a.f = *f;
            a.r#type = AttributeType::Float as i32;
        }
    }
    a
}

fn value_info(name: &str, dtype: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => DimValue::DimValue(*n as i64),
                Dim::Named(s) => DimValue::DimParam(s.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: dtype as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The name, element type and dimensions of the inputs or outputs of `graph`.
pub fn signature(values: &[ValueInfoProto]) -> Vec<(String, i32, Vec<Option<i64>>)> {
    values
        .iter()
        .map(|v| {
            let (elem, dims) = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                Some(type_proto::Value::TensorType(t)) => (
                    t.elem_type,
                    t.shape
                        .as_ref()
                        .map(|s| {
                            s.dim
                                .iter()
                                .map(|d| match d.value {
                                    Some(DimValue::DimValue(n)) => Some(n),
                                    _ => None,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => (pb::tensor_proto::DataType::Undefined as i32, Vec::new()),
            };
            (v.name.clone(), elem, dims)
        })
        .collect()
}
