"""The FEM authors' numpy code (Fuad et al. 2020), transcribed for comparison."""
import numpy as np


def fem_literal(feature_map, sigma=2):
    """The FEM authors' numpy code (channels last: B x W x H x C), transcribed loop for loop."""
    batch_size, w_layer, h_layer, n_channels = feature_map.shape
    thresholded = np.zeros((batch_size, w_layer, h_layer, n_channels))
    for b in range(batch_size):
        activation = feature_map[b]
        mean = activation.mean(axis=(0, 1)).reshape((1, 1, -1)) * np.ones((w_layer, h_layer, n_channels))
        std = activation.std(axis=(0, 1)).reshape((1, 1, -1)) * np.ones((w_layer, h_layer, n_channels))
        thresholded[b] = 1.0 * (activation > (mean + sigma * std))
    maps = []
    for b in range(batch_size):
        weights = np.mean(feature_map[b], axis=(0, 1)).reshape((1, 1, -1)) * np.ones((w_layer, h_layer, n_channels))
        feat_map = np.sum(weights * thresholded[b], axis=2)
        maps.append(feat_map if np.max(feat_map) == 0 else feat_map / np.max(feat_map))
    return np.stack(maps)
