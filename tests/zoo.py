"""A zoo of architectures people take to Loihi, written from public examples and papers.

Each builder returns a small functional/Sequential ``keras.Model`` with the layer kinds of
its source (sizes shrunk so the whole zoo runs in seconds). ``SOURCE`` says where each
architecture comes from; ``APPROXIMATE`` lists those with an announced approximation
(max pooling), whose rate mode is not expected to equal Keras.
"""

from __future__ import annotations

import keras
from keras import layers as L


def _model(inputs, outputs, name):
    return keras.Model(inputs, outputs, name=name)


def mnist_convnet():
    x = keras.Input((28, 28, 1))
    h = L.Conv2D(8, 3, activation="relu")(x)
    h = L.MaxPooling2D(2)(h)
    h = L.Conv2D(16, 3, activation="relu")(h)
    h = L.MaxPooling2D(2)(h)
    h = L.Dropout(0.5)(L.Flatten()(h))
    return _model(x, L.Dense(10, activation="softmax")(h), "mnist_convnet")


def kws_dense():
    x = keras.Input((390,))
    h = L.Dense(64, activation="relu")(x)
    h = L.Dense(64, activation="relu")(h)
    return _model(x, L.Dense(12)(h), "kws_dense")


def kws_conv1d():
    x = keras.Input((49, 10))
    h = L.Conv1D(16, 3, activation="relu")(x)
    h = L.Conv1D(24, 9, strides=2, padding="same", activation="relu")(h)
    h = L.AveragePooling1D(2)(h)
    h = L.GlobalAveragePooling1D()(h)
    return _model(x, L.Dense(12)(h), "kws_conv1d")


def tcn_causal():
    x = keras.Input((32, 4))
    h = L.Conv1D(8, 1, activation="relu")(x)
    h1 = L.Conv1D(8, 3, padding="causal", dilation_rate=2, activation="relu")(h)
    h = L.Add()([h, L.Conv1D(8, 3, padding="causal", dilation_rate=4)(h1)])
    h = L.ReLU()(h)
    h = L.Cropping1D((24, 0))(h)
    return _model(x, L.Dense(3)(L.Flatten()(h)), "tcn_causal")


def _bn_conv(h, filters, k, strides=1, act=True):
    h = L.Conv2D(filters, k, strides=strides, padding="same", use_bias=False)(h)
    h = L.BatchNormalization()(h)
    return L.ReLU()(h) if act else h


def resnet_identity():
    x = keras.Input((12, 12, 3))
    h = _bn_conv(x, 8, 3)
    y = _bn_conv(h, 8, 3)
    y = _bn_conv(y, 8, 3, act=False)
    h = L.ReLU()(L.Add()([h, y]))
    h = L.GlobalAveragePooling2D()(h)
    return _model(x, L.Dense(5)(h), "resnet_identity")


def resnet_projection():
    x = keras.Input((12, 12, 3))
    h = _bn_conv(x, 8, 3)
    y = _bn_conv(h, 16, 3, strides=2)
    y = _bn_conv(y, 16, 3, act=False)
    s = L.BatchNormalization()(L.Conv2D(16, 1, strides=2, use_bias=False)(h))
    h = L.ReLU()(L.Add()([s, y]))
    h = L.Flatten()(h)
    return _model(x, L.Dense(5)(h), "resnet_projection")


def inception_block():
    x = keras.Input((10, 10, 3))
    h = L.Conv2D(8, 1, activation="relu")(x)
    b1 = L.Conv2D(4, 1, activation="relu")(h)
    b2 = L.Conv2D(4, 3, padding="same", activation="relu")(L.Conv2D(3, 1, activation="relu")(h))
    b3 = L.Conv2D(4, 3, padding="same", activation="relu")(
        L.Conv2D(4, 3, padding="same", activation="relu")(h))
    b4 = L.Conv2D(4, 1, activation="relu")(L.AveragePooling2D(3, strides=1, padding="same")(h))
    h = L.Concatenate()([b1, b2, b3, b4])
    h = L.GlobalAveragePooling2D()(h)
    return _model(x, L.Dense(5)(h), "inception_block")


def mobilenet_v1_block():
    x = keras.Input((12, 12, 3))
    h = _bn_conv(x, 8, 3, strides=2)
    h = L.DepthwiseConv2D(3, padding="same", use_bias=False)(h)
    h = L.ReLU()(L.BatchNormalization()(h))
    h = _bn_conv(h, 16, 1)
    h = L.GlobalAveragePooling2D()(h)
    return _model(x, L.Dense(5)(h), "mobilenet_v1_block")


def xception_separable():
    x = keras.Input((12, 12, 3))
    h = L.Conv2D(8, 3, activation="relu")(x)
    h = L.SeparableConv2D(12, 3, padding="same", activation="relu")(h)
    h = L.SeparableConv2D(12, 3, depth_multiplier=2, activation="relu")(h)
    h = L.GlobalAveragePooling2D()(h)
    return _model(x, L.Dense(5)(h), "xception_separable")


def all_convolutional():
    x = keras.Input((16, 16, 3))
    h = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    h = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(h)
    h = L.Conv2D(12, 3, strides=2, padding="same", activation="relu")(h)
    h = L.Conv2D(5, 1)(h)
    h = L.GlobalAveragePooling2D()(h)
    return _model(x, L.Activation("softmax")(h), "all_convolutional")


def upsampling_autoencoder():
    x = keras.Input((12, 12, 1))
    h = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    h = L.AveragePooling2D(2)(h)
    h = L.Conv2D(4, 3, padding="same", activation="relu")(h)
    h = L.UpSampling2D(2)(h)
    h = L.Conv2D(8, 3, padding="same", activation="relu")(h)
    return _model(x, L.Conv2D(1, 3, padding="same")(h), "upsampling_autoencoder")


def mobilenet_v2_block():
    x = keras.Input((10, 10, 3))
    h = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(8, 3, padding="same")(x)))
    y = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(24, 1)(h)))
    y = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(y)))
    y = L.BatchNormalization()(L.Conv2D(8, 1)(y))
    h = L.Add()([h, y])
    h = L.ReLU(6.0)(L.Conv2D(16, 1)(h))
    return _model(x, L.Dense(5)(L.GlobalAveragePooling2D()(h)), "mobilenet_v2_block")


def resnet_stem():
    x = keras.Input((16, 16, 3))
    h = L.ZeroPadding2D(3)(x)
    h = L.Conv2D(8, 7, strides=2, activation="relu")(h)
    h = L.ZeroPadding2D(1)(h)
    h = L.AveragePooling2D(3, strides=2)(h)
    h = L.Conv2D(8, 3, activation="relu")(h)
    return _model(x, L.Dense(4)(L.Flatten()(h)), "resnet_stem")


def dcgan_discriminator():
    x = keras.Input((12, 12, 1))
    h = L.LeakyReLU(0.2)(L.Conv2D(8, 3, strides=2, padding="same")(x))
    h = L.LeakyReLU(0.2)(L.Conv2D(16, 3, strides=2, padding="same")(h))
    return _model(x, L.Dense(1)(L.Flatten()(h)), "dcgan_discriminator")


def resnext_grouped():
    x = keras.Input((10, 10, 3))
    h = L.Conv2D(16, 1, activation="relu")(x)
    h = L.Conv2D(16, 3, padding="same", groups=4, activation="relu")(h)
    h = L.Conv2D(8, 1, activation="relu")(h)
    return _model(x, L.Dense(4)(L.GlobalAveragePooling2D()(h)), "resnext_grouped")


def unet_small():
    x = keras.Input((12, 12, 1))
    c1 = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    p = L.AveragePooling2D(2)(c1)
    c2 = L.Conv2D(16, 3, padding="same", activation="relu")(p)
    u = L.UpSampling2D(2)(c2)
    h = L.Concatenate()([u, c1])
    h = L.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = L.Cropping2D(2)(h)
    return _model(x, L.Conv2D(1, 1)(h), "unet_small")


def siamese_difference():
    x = keras.Input((20,))
    a = L.Dense(16, activation="relu")(x)
    b = L.Dense(16, activation="relu")(x)
    h = L.ReLU()(L.Subtract()([a, b]))
    m = L.Average()([L.Dense(8, activation="relu")(h), L.Dense(8, activation="relu")(a)])
    return _model(x, L.Dense(3)(m), "siamese_difference")


def sequential_permute():
    return keras.Sequential([
        keras.Input((8, 6, 2)), L.Conv2D(4, 3, activation="relu"),
        L.Permute((2, 1, 3)), L.Reshape((4, 6, 4)), L.Conv2D(4, 3, activation="relu"),
        L.Flatten(), L.Dense(3)], name="sequential_permute")


SOURCE = {
    "mnist_convnet": "keras-io examples/vision/mnist_convnet (Conv2D, MaxPooling2D, Dropout, softmax)",
    "kws_dense": "Blouw et al. 2019, keyword spotting on Loihi (two dense relu layers on MFCC features)",
    "kws_conv1d": "Choi et al. 2019, temporal convolutions for keyword spotting (Conv1D over time)",
    "tcn_causal": "Bai et al. 2018, temporal convolutional networks (causal dilated Conv1D, residual)",
    "resnet_identity": "He et al. 2016, ResNet basic block with identity shortcut (conv-BN-relu)",
    "resnet_projection": "He et al. 2016, ResNet block with strided 1x1 projection shortcut",
    "inception_block": "Szegedy et al. 2015, Inception module (1x1/3x3/double-3x3/pool branches, Concatenate)",
    "mobilenet_v1_block": "Howard et al. 2017, MobileNet depthwise-separable block (DepthwiseConv2D-BN-relu, 1x1)",
    "xception_separable": "Chollet 2017, Xception (SeparableConv2D, depth multiplier)",
    "all_convolutional": "Springenberg et al. 2015, all-convolutional net ending in global average pooling",
    "upsampling_autoencoder": "keras-io convolutional autoencoder (pooling, UpSampling2D, conv output)",
    "mobilenet_v2_block": "Sandler et al. 2018, MobileNetV2 inverted residual (relu6, depthwise, linear bottleneck, Add)",
    "resnet_stem": "He et al. 2016 / keras.applications ResNet stem (ZeroPadding2D, 7x7/2 conv, 3x3/2 pooling)",
    "dcgan_discriminator": "Radford et al. 2015, DCGAN discriminator (strided conv, LeakyReLU 0.2)",
    "resnext_grouped": "Xie et al. 2017, ResNeXt (grouped Conv2D)",
    "unet_small": "Ronneberger et al. 2015, U-Net (skip Concatenate across UpSampling2D, Cropping2D)",
    "siamese_difference": "Siamese/difference networks (Subtract, Average merges of dense branches)",
    "sequential_permute": "a Sequential model with Permute and Reshape between convolutions",
}
BUILDERS = {name: globals()[name] for name in SOURCE}
APPROXIMATE = {"mnist_convnet"}
