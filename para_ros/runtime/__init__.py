"""Pure runtime (no rclpy): ONNX Runtime policy, command gating and watchdog."""
