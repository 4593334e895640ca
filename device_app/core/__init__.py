"""The device app's logic, free of Kivy: keys and signing, enrollment, the provider API client,
push listeners, the inbox model, user codes, QR decoding and the local account store.

Everything here can be used from plain Python (and is tested with plain pytest); the Kivy UI in
device_app/ui calls it on worker threads and brings results back with Clock.schedule_once.
"""
