namespace EdgeTwin.Agent.Twin.Models;

/// <summary>Defaults of the machine-health maintenance predictions.</summary>
public static class MaintenanceDefaults
{
    /// <summary>Manifest name of the machine-health RUL model trained by models/maintenance/train_bearing.py.</summary>
    public const string Model = "bearing-rul";
}
