"""Benchmarks: programs' libraries that print measured figures, never timed tests.

Public API:
    benchmark_heads, format_timings      what the CSRA head adds to a backbone
    benchmark_input_pipeline             the JPEG pipeline against a training step
    measure_backbone                     a backbone's parameters, GFLOPs and CPU speed
"""

from csra_tf.benchmarks.backbone_costs import BackboneCosts, measure_backbone
from csra_tf.benchmarks.head_timing import HeadTiming, benchmark_heads, format_timings
from csra_tf.benchmarks.pipeline_timing import (
    PipelineBenchmark,
    benchmark_input_pipeline,
)

__all__ = [
    "BackboneCosts",
    "HeadTiming",
    "PipelineBenchmark",
    "benchmark_heads",
    "benchmark_input_pipeline",
    "format_timings",
    "measure_backbone",
]
