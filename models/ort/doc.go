// Package ort runs ONNX graphs with ONNX Runtime through
// github.com/yalue/onnxruntime_go. The shared library (libonnxruntime.so)
// is loaded at run time from a path the caller gives. The package needs
// cgo: built without it, it is empty, and models.Open reports
// models.ErrNoCgo for the "ort" engine.
package ort
