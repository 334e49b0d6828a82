"""gamgin_devices: home appliances as ROS services, local intents, local music."""
