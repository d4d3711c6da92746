"""Encoders (ImageBind), temporal layers and the decoders that turn similarities into labels."""
