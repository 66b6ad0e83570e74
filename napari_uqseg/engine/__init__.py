"""torch layer: networks, one file per uncertainty method, training, sliding-window inference, model store."""
