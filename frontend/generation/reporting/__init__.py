"""What clients see of jobs: status views, standing (position, ETA), the WebSocket hub and its relay across replicas."""
