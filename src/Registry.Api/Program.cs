using Registry.Api;

var app = RegistryApp.Create(args);
app.Run();
