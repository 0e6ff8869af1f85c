using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace EdgeTwin.Core.Config;

/// <summary>
/// Writes a <see cref="SiteConfig"/> as YAML that <see cref="SiteConfigLoader"/> reads back to an equal config
/// (used by <c>edgetwin sim --config-out</c>). Passwords read from files are written as the file reference,
/// never as the secret; inline passwords stay inline. Raw sections (uplinks, alerts, models) are written as read.
/// </summary>
public static class SiteConfigWriter
{
    /// <summary>The YAML text of <paramref name="config"/>.</summary>
    public static string ToYaml(SiteConfig config)
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        Write(config, writer);
        return writer.ToString();
    }

    /// <summary>
    /// Writes <paramref name="config"/> to <paramref name="path"/> (created or replaced atomically), readable by its
    /// owner only: the text may hold inline secrets (the simulator's community), and a config that does is one
    /// <c>check</c> warns about when every user may read it.
    /// </summary>
    public static void WriteFile(SiteConfig config, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        var temp = full + ".tmp";
        // The mode is set at creation (not chmod after), so the secret is never readable by others, not even briefly;
        // a leftover temp file from an interrupted write would keep its old mode, so it goes first.
        File.Delete(temp);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var writer = new StreamWriter(temp, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false), options))
        {
            writer.Write(ToYaml(config));
        }

        File.Move(temp, full, overwrite: true);
    }

    /// <summary>Writes <paramref name="config"/> to <paramref name="output"/>.</summary>
    public static void Write(SiteConfig config, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(output);
        output.WriteLine("# EdgeTwin site config (schema: device-profiles/schema/site-config.schema.json)");
        var e = new YamlEmitter(new Emitter(output, bestIndent: 2, bestWidth: int.MaxValue));
        e.Begin();
        e.MapStart();
        WriteSite(e, config.Site);
        e.Key("devices");
        e.SeqStart();
        foreach (var d in config.Devices)
        {
            WriteDevice(e, d);
        }

        e.SeqEnd();
        if (config.Credentials.Count > 0)
        {
            e.Key("credentials");
            e.MapStart();
            foreach (var (name, c) in config.Credentials.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                e.Key(name);
                WriteCredentials(e, c);
            }

            e.MapEnd();
        }

        if (config.ProfilesDir is not null)
        {
            e.Pair("profiles_dir", config.ProfilesDir);
        }

        e.Key("outbox");
        e.MapStart(flow: true);
        e.Pair("path", config.Outbox.Path);
        e.Pair("disk_budget_mb", config.Outbox.DiskBudgetMb);
        e.Pair("max_age", Durations.Format(config.Outbox.MaxAge));
        e.Pair("summary_window", Durations.Format(config.Outbox.SummaryWindow));
        e.Pair("checkpoint_interval", Durations.Format(config.Outbox.CheckpointInterval));
        e.Pair("commit_interval", Durations.Format(config.Outbox.CommitInterval));
        if (config.Outbox.MemoryBudgetMb != OutboxSettings.Default.MemoryBudgetMb)
        {
            e.Pair("memory_budget_mb", config.Outbox.MemoryBudgetMb);
        }
        e.MapEnd();
        WriteRaw(e, "uplinks", config.Uplinks);
        WriteRaw(e, "alerts", config.Alerts);
        WriteRaw(e, "models", config.Models);
        foreach (var (name, section) in config.Sections.Where(s => s.Key is not ("uplinks" or "alerts" or "models")).OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            WriteRaw(e, name, section);
        }
        e.MapEnd();
        e.End();
    }

    private static void WriteSite(YamlEmitter e, SiteTopology s)
    {
        e.Key("site");
        e.MapStart();
        e.Pair("id", s.Id);
        e.Pair("gateway_id", s.GatewayId);
        if (s.Rooms.Count > 0)
        {
            e.Key("rooms");
            e.SeqStart();
            foreach (var room in s.Rooms)
            {
                e.MapStart();
                e.Pair("id", room.Id);
                if (room.VolumeM3 is { } v)
                {
                    e.Pair("volume_m3", v);
                }

                if (room.InfrastructureMeters is { Count: > 0 } meters)
                {
                    e.Key("power");
                    e.MapStart(flow: true);
                    e.IdList("infrastructure_meters", meters);
                    e.MapEnd();
                }

                if (room.Rows.Count > 0)
                {
                    e.Key("rows");
                    e.SeqStart();
                    foreach (var row in room.Rows)
                    {
                        e.MapStart();
                        e.Pair("id", row.Id);
                        e.Key("racks");
                        e.SeqStart();
                        foreach (var rack in row.Racks)
                        {
                            e.MapStart(flow: true);
                            e.Pair("id", rack.Id);
                            e.Pair("position", rack.Position);
                            e.Pair("power_budget_kw", rack.PowerBudgetKw);
                            e.IdList("feeds", rack.Feeds);
                            e.Pair("servers", rack.Servers);
                            e.MapEnd();
                        }

                        e.SeqEnd();
                        e.MapEnd();
                    }

                    e.SeqEnd();
                }

                e.MapEnd();
            }

            e.SeqEnd();
        }

        if (s.CoolingUnits.Count > 0)
        {
            e.Key("cooling_units");
            e.SeqStart();
            foreach (var c in s.CoolingUnits)
            {
                e.MapStart(flow: true);
                e.Pair("id", c.Id);
                e.Pair("room", c.Room);
                e.Pair("capacity_kw", c.CapacityKw);
                e.IdList("serves", c.Serves);
                if (c.Device is not null)
                {
                    e.Pair("device", c.Device);
                }

                e.MapEnd();
            }

            e.SeqEnd();
        }

        if (s.Power.Ups.Count > 0 || s.Power.Pdus.Count > 0)
        {
            e.Key("power");
            e.MapStart();
            e.Key("ups");
            e.SeqStart();
            foreach (var u in s.Power.Ups)
            {
                e.MapStart(flow: true);
                e.Pair("id", u.Id);
                if (u.Device is not null)
                {
                    e.Pair("device", u.Device);
                }

                e.Pair("capacity_kw", u.CapacityKw);
                e.MapEnd();
            }

            e.SeqEnd();
            e.Key("pdus");
            e.SeqStart();
            foreach (var p in s.Power.Pdus)
            {
                e.MapStart(flow: true);
                e.Pair("id", p.Id);
                if (p.Device is not null)
                {
                    e.Pair("device", p.Device);
                }

                if (p.Upstream is not null)
                {
                    e.Pair("upstream", p.Upstream);
                }

                e.Pair("breaker_a", p.BreakerA);
                e.Pair("phases", p.Phases);
                e.Pair("voltage_v", p.VoltageV);
                e.MapEnd();
            }

            e.SeqEnd();
            if (s.Power.FacilityMeter is not null)
            {
                e.Pair("facility_meter", s.Power.FacilityMeter);
            }

            e.MapEnd();
        }

        if (s.Lines.Count > 0)
        {
            e.Key("lines");
            e.SeqStart();
            foreach (var line in s.Lines)
            {
                e.MapStart();
                e.Pair("id", line.Id);
                e.Key("machines");
                e.SeqStart();
                foreach (var m in line.Machines)
                {
                    e.MapStart(flow: true);
                    e.Pair("id", m.Id);
                    if (m.Device is not null)
                    {
                        e.Pair("device", m.Device);
                    }

                    e.MapEnd();
                }

                e.SeqEnd();
                e.MapEnd();
            }

            e.SeqEnd();
        }

        e.MapEnd();
    }

    private static void WriteDevice(YamlEmitter e, DeviceConfig d)
    {
        e.MapStart(flow: true);
        e.Pair("id", d.Id);
        e.Pair("profile", d.Profile);
        e.Pair("address", d.Address.ToString(), quoted: true);
        if (d.Credentials is not null)
        {
            e.Pair("credentials", d.Credentials);
        }

        if (d.UnitId is { } unit)
        {
            e.Pair("unit_id", unit);
        }

        if (d.Serial is { } serial)
        {
            e.Key("serial");
            e.MapStart(flow: true);
            e.Pair("baud", serial.Baud);
            e.Pair("parity", serial.Parity switch { SerialParity.None => "N", SerialParity.Odd => "O", _ => "E" });
            e.Pair("stop_bits", serial.StopBits);
            e.Pair("data_bits", serial.DataBits);
            e.MapEnd();
        }

        e.Pair("interval", Durations.Format(d.Interval));
        e.Pair("timeout", Durations.Format(d.Timeout));
        if (d.MaxSeries != EdgeTwin.Core.Samples.DeviceSeriesBudget.DefaultMaxSeries)
        {
            e.Pair("max_series", d.MaxSeries);
        }

        if (d.RowRetention != DeviceConfig.DefaultRowRetention)
        {
            e.Pair("row_retention", Durations.Format(d.RowRetention));
        }

        if (!d.Location.IsNone)
        {
            e.Key("location");
            e.MapStart(flow: true);
            if (d.Location.Rack is not null)
            {
                e.Pair("rack", d.Location.Rack);
            }

            if (d.Location.CoolingUnit is not null)
            {
                e.Pair("cooling_unit", d.Location.CoolingUnit);
            }

            if (d.Location.Machine is not null)
            {
                e.Pair("machine", d.Location.Machine);
            }

            if (d.Location.Room is not null)
            {
                e.Pair("room", d.Location.Room);
            }

            e.MapEnd();
        }

        if (!d.Enabled)
        {
            e.Pair("enabled", false);
        }

        e.MapEnd();
    }

    private static void WriteCommunity(YamlEmitter e, CredentialsConfig c)
    {
        if (c.CommunityFile is { } file)
        {
            e.Pair("community_file", file, quoted: true);
        }
        else
        {
            e.Pair("community", c.Community ?? string.Empty, quoted: true);
        }
    }

    private static void WriteCredentials(YamlEmitter e, CredentialsConfig c)
    {
        e.MapStart(flow: c.Version != SnmpVersion.V3);
        switch (c.Version)
        {
            case SnmpVersion.V1:
                e.Pair("version", 1);
                WriteCommunity(e, c);
                break;
            case SnmpVersion.V2c:
                e.Pair("version", "2c");
                WriteCommunity(e, c);
                break;
            default:
                e.Pair("version", 3);
                e.Pair("user", c.User ?? string.Empty);
                e.Pair("level", c.Level switch { SnmpSecurityLevel.AuthPriv => "authPriv", SnmpSecurityLevel.AuthNoPriv => "authNoPriv", _ => "noAuthNoPriv" });
                if (c.Auth != SnmpAuthProtocol.None)
                {
                    e.Pair("auth", c.Auth switch
                    {
                        SnmpAuthProtocol.Md5 => "MD5",
                        SnmpAuthProtocol.Sha1 => "SHA",
                        SnmpAuthProtocol.Sha224 => "SHA-224",
                        SnmpAuthProtocol.Sha256 => "SHA-256",
                        SnmpAuthProtocol.Sha384 => "SHA-384",
                        _ => "SHA-512",
                    });
                    Secret(e, "auth_password", c.AuthPassword, c.AuthPasswordFile);
                }

                if (c.Priv != SnmpPrivProtocol.None)
                {
                    e.Pair("priv", c.Priv switch
                    {
                        SnmpPrivProtocol.Des => "DES",
                        SnmpPrivProtocol.Aes128 => "AES",
                        SnmpPrivProtocol.Aes192 => "AES-192",
                        SnmpPrivProtocol.Aes192Reeder => "AES-192-C",
                        SnmpPrivProtocol.Aes256Reeder => "AES-256-C",
                        _ => "AES-256",
                    });
                    Secret(e, "priv_password", c.PrivPassword, c.PrivPasswordFile);
                }

                if (c.Context is not null)
                {
                    e.Pair("context", c.Context, quoted: true);
                }

                break;
        }

        e.MapEnd();
    }

    private static void Secret(YamlEmitter e, string key, string? value, string? file)
    {
        if (file is not null)
        {
            e.Pair(key + "_file", file);
        }
        else if (value is not null)
        {
            e.Pair(key, value, quoted: true);
        }
    }

    private static void WriteRaw(YamlEmitter e, string key, ConfigMapping? section)
    {
        if (section is null)
        {
            return;
        }

        e.Key(key);
        e.Node(section);
    }

    /// <summary>Thin event writer over YamlDotNet's emitter, which does the quoting and escaping.</summary>
    private sealed class YamlEmitter(IEmitter emitter)
    {
        private int _flowDepth;

        public void Begin()
        {
            emitter.Emit(new StreamStart());
            emitter.Emit(new DocumentStart(null, null, isImplicit: true));
        }

        public void End()
        {
            emitter.Emit(new DocumentEnd(isImplicit: true));
            emitter.Emit(new StreamEnd());
        }

        public void MapStart(bool flow = false)
        {
            var style = flow || _flowDepth > 0 ? MappingStyle.Flow : MappingStyle.Block;
            if (style == MappingStyle.Flow)
            {
                _flowDepth++;
            }

            emitter.Emit(new MappingStart(AnchorName.Empty, TagName.Empty, isImplicit: true, style));
            _styles.Push(style == MappingStyle.Flow);
        }

        public void MapEnd()
        {
            if (_styles.Pop())
            {
                _flowDepth--;
            }

            emitter.Emit(new MappingEnd());
        }

        public void SeqStart(bool flow = false)
        {
            var style = flow || _flowDepth > 0 ? SequenceStyle.Flow : SequenceStyle.Block;
            if (style == SequenceStyle.Flow)
            {
                _flowDepth++;
            }

            emitter.Emit(new SequenceStart(AnchorName.Empty, TagName.Empty, isImplicit: true, style));
            _styles.Push(style == SequenceStyle.Flow);
        }

        public void SeqEnd()
        {
            if (_styles.Pop())
            {
                _flowDepth--;
            }

            emitter.Emit(new SequenceEnd());
        }

        public void Key(string key) => Scalar(key, quoted: false);

        public void Pair(string key, string value, bool quoted = false)
        {
            Key(key);
            Scalar(value, quoted || LooksTyped(value));
        }

        public void Pair(string key, double value)
        {
            Key(key);
            Scalar(value.ToString("R", CultureInfo.InvariantCulture), quoted: false);
        }

        public void Pair(string key, long value)
        {
            Key(key);
            Scalar(value.ToString(CultureInfo.InvariantCulture), quoted: false);
        }

        public void Pair(string key, bool value)
        {
            Key(key);
            Scalar(value ? "true" : "false", quoted: false);
        }

        public void IdList(string key, IReadOnlyList<string> ids)
        {
            Key(key);
            SeqStart(flow: true);
            foreach (var id in ids)
            {
                Scalar(id, LooksTyped(id));
            }

            SeqEnd();
        }

        public void Node(ConfigNode node)
        {
            switch (node)
            {
                case ConfigScalar s:
                    if (s.IsNull)
                    {
                        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, "~", ScalarStyle.Plain, true, false));
                    }
                    else
                    {
                        Scalar(s.Value, s.IsQuoted);
                    }

                    break;
                case ConfigSequence q:
                    SeqStart();
                    foreach (var item in q.Items)
                    {
                        Node(item);
                    }

                    SeqEnd();
                    break;
                case ConfigMapping m:
                    MapStart();
                    foreach (var (k, v) in m.Entries)
                    {
                        Key(k);
                        Node(v);
                    }

                    MapEnd();
                    break;
            }
        }

        private readonly Stack<bool> _styles = new();

        private void Scalar(string value, bool quoted) =>
            emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, value, quoted ? ScalarStyle.DoubleQuoted : ScalarStyle.Any, !quoted, quoted));

        /// <summary>Strings that a YAML reader would type as number, bool or null are quoted to stay strings.</summary>
        private static bool LooksTyped(string value) =>
            value.Length == 0
            || value is "~" or "null" or "Null" or "NULL" or "true" or "True" or "TRUE" or "false" or "False" or "FALSE"
            || double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
            || value.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
    }
}
