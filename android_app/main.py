from device_app.main import main
main()
