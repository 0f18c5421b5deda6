"""The registry's administration pages: facilities, tanks with their calibration tables, gateways
and sensors."""
