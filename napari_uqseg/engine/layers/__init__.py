"""Layers that uncertainty methods insert into the U-Net."""
